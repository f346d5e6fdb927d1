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
    /// Anything else the database said.
    #[error(transparent)]
    Db(DbErr),
}

impl From<DbErr> for RepoError {
    fn from(e: DbErr) -> Self {
        match e.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(m)) => RepoError::Conflict(m),
            _ => RepoError::Db(e),
        }
    }
}

/// A Postgres statement with positional (`$1`, `$2`, …) values.
pub(crate) fn stmt(sql: &str, values: impl IntoIterator<Item = Value>) -> Statement {
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}
