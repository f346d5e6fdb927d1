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

/// A Postgres statement with positional (`$1`, `$2`, …) values.
pub(crate) fn stmt(sql: &str, values: impl IntoIterator<Item = Value>) -> Statement {
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}
