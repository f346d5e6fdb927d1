//! Recording a new execution (status `queued`), with `Idempotency-Key` semantics.

use super::row::COLUMNS;
use super::{ExecutionRow, Status, TriggeredBy};
use crate::ids::{BatchId, CollectionId, ExecutionId, InstanceId, ScheduleId, UserId, WorkflowId};
use crate::time_window::TimeWindow;
use chrono::{DateTime, Utc};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, FromQueryResult, Statement,
    TransactionTrait,
};
use serde_json::Value;

/// What a run belongs to besides its workflow: the schedule that fired it (and the tick),
/// the collection and window it is an attempt of, or the batch it is one instance's run
/// of; and the run it retries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Links {
    pub schedule_id: Option<ScheduleId>,
    pub scheduled_for: Option<DateTime<Utc>>,
    pub collection_id: Option<CollectionId>,
    /// The window of the collection (its index) the run is an attempt of.
    pub collection_window: Option<i32>,
    pub batch_id: Option<BatchId>,
    pub retry_of: Option<ExecutionId>,
}

/// Everything needed to record a run; the SQL is already rendered and on one line.
#[derive(Debug, Clone)]
pub struct NewExecution {
    pub user_id: UserId,
    pub workflow_id: WorkflowId,
    /// The version of the workflow whose SQL and defaults it runs.
    pub workflow_version: i32,
    pub instance_id: InstanceId,
    pub sql_query: String,
    pub parameters: Value,
    pub window: TimeWindow,
    pub triggered_by: TriggeredBy,
    /// The client's `Idempotency-Key` and a hash of the request body it came with.
    pub idempotency: Option<(String, String)>,
    pub links: Links,
    /// What its first job carries: the root of its trace and the span that made it
    /// (`root;link`, see `telemetry::trace`); `None` when tracing is off.
    pub trace: Option<String>,
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
    let insert = insert_of(new);
    if let Some(row) = insert_statement(insert, &txn).await? {
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

/// The insert of a new run (nothing when its idempotency key or fire key is taken).
fn insert_of(new: &NewExecution) -> Statement {
    let (key, hash) = match &new.idempotency {
        Some((k, h)) => (Some(k.clone()), Some(h.clone())),
        None => (None, None),
    };
    let id = uuid::Uuid::now_v7();
    Statement::from_sql_and_values(
        DbBackend::Postgres,
        format!(
            "INSERT INTO executions (id, user_id, workflow_id, instance_id, status, sql_query, parameters, \
               time_window_start, time_window_end, time_zone, triggered_by, idempotency_key, request_hash, \
               schedule_id, scheduled_for, collection_id, trace_context, retry_of, workflow_version, batch_id, collection_window) \
             VALUES ($1, $2, $3, $4, 'queued', $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20) \
             ON CONFLICT DO NOTHING \
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
            new.links.schedule_id.into(),
            new.links.scheduled_for.into(),
            new.links.collection_id.into(),
            new.trace
                .as_deref()
                .map(|t| crate::telemetry::trace::root_of(t).to_owned())
                .into(),
            new.links.retry_of.into(),
            new.workflow_version.into(),
            new.links.batch_id.into(),
            new.links.collection_window.into(),
        ],
    )
}

async fn insert_statement<C: ConnectionTrait>(
    insert: Statement,
    txn: &C,
) -> Result<Option<ExecutionRow>, DbErr> {
    let Some(row) = ExecutionRow::find_by_statement(insert).one(txn).await? else {
        return Ok(None);
    };
    record_queued(txn, &row).await?;
    Ok(Some(row))
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
            subject: row.id.into(),
            payload: row.public_json(),
        },
    )
    .await
}
