//! Queries per resource (users, tokens, connections, accounts, instances, workflows).
//!
//! Every query that reads or changes a user's resource filters by that user's id, so
//! another user's id behaves exactly like an unknown one ([`RepoError::NotFound`]).

pub mod accounts;
pub mod instances;
pub mod refresh_tokens;
pub mod users;
pub mod workflows;

use sea_orm::{DbBackend, DbErr, SqlErr, Statement, Value};

/// A failed query, classified for the caller.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// The row does not exist or belongs to another user.
    #[error("not found")]
    NotFound,
    /// A unique key already holds this value (the message names the key).
    #[error("conflict: {0}")]
    Conflict(String),
    /// A check constraint refused the change (its name).
    #[error("check {0} refused the change")]
    Check(String),
    /// Anything else the database said.
    #[error(transparent)]
    Db(DbErr),
}

impl From<DbErr> for RepoError {
    fn from(e: DbErr) -> Self {
        if let Some(name) = check_violation(&e) {
            return RepoError::Check(name);
        }
        match e.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(m)) => RepoError::Conflict(m),
            _ => RepoError::Db(e),
        }
    }
}

/// The constraint a check violation (SQLSTATE 23514) names.
fn check_violation(e: &DbErr) -> Option<String> {
    let (DbErr::Exec(sea_orm::RuntimeErr::SqlxError(x))
    | DbErr::Query(sea_orm::RuntimeErr::SqlxError(x))) = e
    else {
        return None;
    };
    let db = x.as_database_error()?;
    (db.code().as_deref() == Some("23514")).then(|| db.constraint().unwrap_or_default().to_owned())
}

/// A keyset position of a list, newest first: the last row shown's `(created_at, id)`.
pub type After = Option<(chrono::DateTime<chrono::Utc>, uuid::Uuid)>;

/// One page of a user's rows of `table`, newest first (`created_at DESC, id DESC`), after
/// `after`: `limit` rows at most, read through the table's `(user_id, created_at)` index.
pub(crate) fn page_of_user(
    columns: &str,
    table: &str,
    user_id: crate::ids::UserId,
    after: After,
    limit: u64,
) -> Statement {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    match after {
        None => stmt(
            &format!(
                "SELECT {columns} FROM {table} WHERE user_id = $1 \
                 ORDER BY created_at DESC, id DESC LIMIT $2"
            ),
            [user_id.into(), limit.into()],
        ),
        Some((at, id)) => stmt(
            &format!(
                "SELECT {columns} FROM {table} WHERE user_id = $1 AND (created_at, id) < ($2, $3) \
                 ORDER BY created_at DESC, id DESC LIMIT $4"
            ),
            [user_id.into(), at.into(), id.into(), limit.into()],
        ),
    }
}

/// A Postgres statement with positional (`$1`, `$2`, …) values.
pub(crate) fn stmt(sql: &str, values: impl IntoIterator<Item = Value>) -> Statement {
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}
