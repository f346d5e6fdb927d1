//! `POST /executions/{id}/retry`: a new run with the same inputs as an ended one (its
//! workflow and instance, its rendered SQL and parameters, its time window), linked to it
//! by `retry_of`. It is a run of its own, started by the API: a retried schedule fire or
//! collection window is not counted again by its schedule or collection.

use super::create::{CreateError, Created, Links, NewExecution, create};
use super::{ExecutionRow, Status, TriggeredBy, find_for_user};
use crate::ids::{ExecutionId, UserId};
use crate::time_window::TimeWindow;
use sea_orm::{DatabaseConnection, DbErr};

/// Why a retry was not recorded.
#[derive(Debug, thiserror::Error)]
pub enum RetryError {
    /// No such run for this user.
    #[error("execution not found")]
    NotFound,
    /// The run has not ended yet (its status).
    #[error("the execution is still {0}")]
    NotEnded(Status),
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// Records the retry of the user's ended run `id`, `queued` (the caller enqueues it).
/// `trace` is what its first job carries.
pub async fn retry(
    db: &DatabaseConnection,
    user: UserId,
    id: ExecutionId,
    trace: Option<String>,
) -> Result<ExecutionRow, RetryError> {
    let old = find_for_user(db, user, id)
        .await?
        .ok_or(RetryError::NotFound)?;
    if !old.status.is_terminal() {
        return Err(RetryError::NotEnded(old.status));
    }
    let new = retry_of(&old, trace)?;
    match create(db, &new).await {
        Ok(Created::New(row) | Created::Existing(row)) => Ok(row),
        Err(CreateError::Db(e)) => Err(e.into()),
        Err(e @ CreateError::IdempotencyMismatch) => Err(DbErr::Custom(e.to_string()).into()),
    }
}

/// The new run repeating `old`.
fn retry_of(old: &ExecutionRow, trace: Option<String>) -> Result<NewExecution, DbErr> {
    let time_zone = old
        .time_zone
        .parse()
        .map_err(|_| DbErr::Custom(format!("stored time zone {:?} is unknown", old.time_zone)))?;
    Ok(NewExecution {
        user_id: old.user_id,
        workflow_id: old.workflow_id,
        // The same query: the version the old run ran (runs before versions ran the first).
        workflow_version: old.workflow_version.unwrap_or(1),
        instance_id: old.instance_id,
        sql_query: old.sql_query.clone(),
        parameters: old.parameters.clone(),
        window: TimeWindow {
            start: old.time_window_start,
            end: old.time_window_end,
            time_zone,
        },
        triggered_by: TriggeredBy::Api,
        idempotency: None,
        links: Links {
            retry_of: Some(old.id),
            ..Links::default()
        },
        trace,
    })
}
