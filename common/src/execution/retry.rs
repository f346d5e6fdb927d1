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
    /// The old run's stored time zone is not one this build knows.
    #[error("stored time zone {zone:?} is unknown")]
    TimeZone {
        zone: String,
        #[source]
        source: chrono_tz::ParseError,
    },
    /// Recording the new run failed.
    #[error("the retry was not recorded")]
    Create(#[source] CreateError),
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
        // A retry carries no Idempotency-Key, so this is not expected.
        Err(e @ CreateError::IdempotencyMismatch) => Err(RetryError::Create(e)),
    }
}

/// The new run repeating `old`.
fn retry_of(old: &ExecutionRow, trace: Option<String>) -> Result<NewExecution, RetryError> {
    let time_zone = old
        .time_zone
        .parse()
        .map_err(|source| RetryError::TimeZone {
            zone: old.time_zone.clone(),
            source,
        })?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::execution::batch::queued_row_of;
    use crate::ids::{InstanceId, WorkflowId};
    use std::error::Error;

    fn ended(time_zone: &str) -> ExecutionRow {
        let new = NewExecution {
            user_id: UserId(uuid::Uuid::now_v7()),
            workflow_id: WorkflowId(uuid::Uuid::now_v7()),
            workflow_version: 3,
            instance_id: InstanceId(uuid::Uuid::now_v7()),
            sql_query: "SELECT 1".into(),
            parameters: serde_json::json!({"a": 1}),
            window: TimeWindow::parse("2024-01-01T00:00:00", "2024-01-02T00:00:00", None)
                .expect("window"),
            triggered_by: TriggeredBy::Schedule,
            idempotency: None,
            links: Links::default(),
            trace: None,
        };
        let mut row = queued_row_of(ExecutionId(uuid::Uuid::now_v7()), &new, chrono::Utc::now());
        row.time_zone = time_zone.into();
        row
    }

    #[test]
    fn a_retry_repeats_the_run_started_by_the_api() {
        let old = ended("Europe/Paris");
        let new = retry_of(&old, None).expect("retry");
        assert_eq!(new.window.time_zone, chrono_tz::Europe::Paris);
        assert_eq!(new.workflow_version, 3);
        assert_eq!(new.triggered_by, TriggeredBy::Api);
        assert_eq!(new.links.retry_of, Some(old.id));
    }

    #[test]
    fn an_unknown_stored_zone_keeps_its_parse_error() {
        let Err(e) = retry_of(&ended("Mars/Olympus"), None) else {
            panic!("an unknown zone was accepted");
        };
        assert!(matches!(&e, RetryError::TimeZone { zone, .. } if zone == "Mars/Olympus"));
        let source = e.source().expect("the parse error is kept");
        assert!(source.downcast_ref::<chrono_tz::ParseError>().is_some());
    }
}
