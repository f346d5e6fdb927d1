//! Recording a new execution (status `queued`), with `Idempotency-Key` semantics.

use super::row::COLUMNS;
use super::{ExecutionRow, Status, TriggeredBy};
use crate::ids::{InstanceId, UserId, WorkflowId};
use crate::time_window::TimeWindow;
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, FromQueryResult, Statement,
    TransactionTrait,
};
use serde_json::Value;

/// Everything needed to record a run; the SQL is already rendered and on one line.
#[derive(Debug, Clone)]
pub struct NewExecution {
    pub user_id: UserId,
    pub workflow_id: WorkflowId,
    pub instance_id: InstanceId,
    pub sql_query: String,
    pub parameters: Value,
    pub window: TimeWindow,
    pub triggered_by: TriggeredBy,
    /// The client's `Idempotency-Key` and a hash of the request body it came with.
    pub idempotency: Option<(String, String)>,
}

#[derive(Debug)]
pub enum Created {
    /// A new row was written (with its audit row and event).
    New(ExecutionRow),
    /// The same key and body were seen before: the earlier execution.
    Existing(ExecutionRow),
}

impl Created {
    pub fn row(&self) -> &ExecutionRow {
        match self {
            Created::New(r) | Created::Existing(r) => r,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error("the Idempotency-Key was already used with a different request body")]
    IdempotencyMismatch,
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// Inserts the run `queued`. A repeat of the same `Idempotency-Key` (also concurrent)
/// answers the first run; the same key with another body is refused.
pub async fn create(db: &DatabaseConnection, new: &NewExecution) -> Result<Created, CreateError> {
    let txn = db.begin().await?;
    let (key, hash) = match &new.idempotency {
        Some((k, h)) => (Some(k.clone()), Some(h.clone())),
        None => (None, None),
    };
    let id = uuid::Uuid::now_v7();
    let insert = Statement::from_sql_and_values(
        DbBackend::Postgres,
        format!(
            "INSERT INTO executions (id, user_id, workflow_id, instance_id, status, sql_query, parameters, \
               time_window_start, time_window_end, time_zone, triggered_by, idempotency_key, request_hash) \
             VALUES ($1, $2, $3, $4, 'queued', $5, $6, $7, $8, $9, $10, $11, $12) \
             ON CONFLICT (user_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING \
             RETURNING {COLUMNS}"
        ),
        [
            id.into(),
            new.user_id.0.into(),
            new.workflow_id.0.into(),
            new.instance_id.0.into(),
            new.sql_query.clone().into(),
            new.parameters.clone().into(),
            new.window.start.into(),
            new.window.end.into(),
            new.window.time_zone.name().to_string().into(),
            new.triggered_by.as_str().into(),
            key.clone().into(),
            hash.clone().into(),
        ],
    );
    if let Some(row) = ExecutionRow::find_by_statement(insert).one(&txn).await? {
        record_queued(&txn, &row).await?;
        txn.commit().await?;
        return Ok(Created::New(row));
    }
    // The key exists: the insert waited for the other transaction, so the row is visible.
    let existing = ExecutionRow::find_by_statement(Statement::from_sql_and_values(
        DbBackend::Postgres,
        format!("SELECT {COLUMNS} FROM executions WHERE user_id = $1 AND idempotency_key = $2"),
        [new.user_id.0.into(), key.into()],
    ))
    .one(&txn)
    .await?
    .ok_or_else(|| DbErr::RecordNotFound("idempotent execution vanished".into()))?;
    txn.commit().await?;
    if existing.request_hash != hash {
        return Err(CreateError::IdempotencyMismatch);
    }
    Ok(Created::Existing(existing))
}

/// The audit reason of a run's first transition.
pub(super) fn queued_reason(row: &ExecutionRow) -> String {
    format!("created by {}", row.triggered_by)
}

async fn record_queued<C: ConnectionTrait>(txn: &C, row: &ExecutionRow) -> Result<(), DbErr> {
    txn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "INSERT INTO execution_transitions (execution_id, from_status, to_status, reason) VALUES ($1, NULL, $2, $3)",
        [row.id.into(), Status::Queued.as_str().into(), queued_reason(row).into()],
    ))
    .await?;
    crate::event::record(
        txn,
        crate::event::NewEvent {
            user: row.user_id,
            event_type: crate::event::EventType::ExecutionQueued,
            subject: row.id.0,
            payload: row.public_json(),
        },
    )
    .await
}
