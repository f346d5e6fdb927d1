//! An execution row as read by the state machine, the workers and the API.

use super::{ErrorCode, ExecutionStatus, TriggeredBy};
use crate::ids::{
    AmcExecutionId, AmcWorkflowId, BatchId, CollectionId, ExecutionId, InstanceId, ScheduleId,
    UserId, WorkflowId,
};
use chrono::{DateTime, NaiveDateTime, Utc};
use sea_orm::FromQueryResult;
use serde_json::{Value, json};

/// An execution, decoded once where it is read: ids, status, origin and error code are
/// their types, never strings.
#[derive(Debug, Clone, FromQueryResult)]
pub struct ExecutionRow {
    pub id: ExecutionId,
    pub user_id: UserId,
    pub workflow_id: WorkflowId,
    /// The version of the workflow it ran (NULL only for rows older than versions).
    pub workflow_version: Option<i32>,
    pub instance_id: InstanceId,
    pub status: ExecutionStatus,
    pub sql_query: String,
    pub parameters: Value,
    pub time_window_start: NaiveDateTime,
    pub time_window_end: NaiveDateTime,
    pub time_zone: String,
    pub amc_execution_id: Option<AmcExecutionId>,
    pub attempt: i32,
    pub next_check_at: Option<DateTime<Utc>>,
    pub submit_started_at: Option<DateTime<Utc>>,
    pub cancel_requested_at: Option<DateTime<Utc>>,
    pub error_code: Option<ErrorCode>,
    pub error_message: Option<String>,
    pub result_location: Option<String>,
    pub result_columns: Option<Value>,
    pub row_count: Option<i64>,
    pub triggered_by: TriggeredBy,
    /// The schedule that fired (or was triggered into) this run.
    pub schedule_id: Option<ScheduleId>,
    /// The tick this run is the fire of (`None` for a trigger).
    pub scheduled_for: Option<DateTime<Utc>>,
    /// The collection this run is a window of.
    pub collection_id: Option<CollectionId>,
    /// The window (its index in the collection) this run is an attempt of.
    pub collection_window: Option<i32>,
    pub idempotency_key: Option<String>,
    pub request_hash: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub submitting_at: Option<DateTime<Utc>>,
    pub running_at: Option<DateTime<Utc>>,
    pub fetching_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    /// The root of the run's trace (W3C `traceparent`), when tracing was on.
    pub trace_context: Option<String>,
    /// The run this one retries (`POST /executions/{id}/retry`).
    pub retry_of: Option<ExecutionId>,
    /// When retention removed the stored result (`result_location` is then cleared).
    pub results_expired_at: Option<DateTime<Utc>>,
    /// The saved workflow AMC ran it through (a query over `AMP_AMC_ADHOC_MAX_BYTES`);
    /// `None` for a query sent ad hoc.
    pub amc_workflow_id: Option<AmcWorkflowId>,
    /// The batch this run is one instance's run of.
    pub batch_id: Option<BatchId>,
    /// Why a queued run waits (not a column: filled by [`super::with_waiting`]).
    #[sea_orm(skip)]
    pub waiting_reason: Option<super::WaitingReason>,
    /// When a run held by the daily quota may start (the next local midnight).
    #[sea_orm(skip)]
    pub quota_wait_until: Option<DateTime<Utc>>,
}

/// An error as clients see it, `{"code", "message"}`; null without a code.
pub(crate) fn error_json(code: Option<impl serde::Serialize>, message: Option<&str>) -> Value {
    code.map_or(
        Value::Null,
        |code| json!({"code": code, "message": message}),
    )
}

impl ExecutionRow {
    /// The execution as clients and webhook consumers see it (CONTRACT step 8).
    pub fn public_json(&self) -> Value {
        let error = error_json(self.error_code.as_ref(), self.error_message.as_deref());
        json!({
            "id": self.id,
            "workflow_id": self.workflow_id,
            "workflow_version": self.workflow_version,
            "instance_id": self.instance_id,
            "status": self.status,
            "amc_execution_id": self.amc_execution_id,
            "amc_workflow_id": self.amc_workflow_id,
            "row_count": self.row_count,
            "error": error,
            "parameters": self.parameters,
            "time_window": {
                "start": self.time_window_start.format(crate::time_window::AMC_FORMAT).to_string(),
                "end": self.time_window_end.format(crate::time_window::AMC_FORMAT).to_string(),
                "time_zone": self.time_zone,
            },
            "triggered_by": self.triggered_by,
            "schedule_id": self.schedule_id,
            "scheduled_for": self.scheduled_for,
            "collection_id": self.collection_id,
            "batch_id": self.batch_id,
            "collection_window": self.collection_window,
            "retry_of": self.retry_of,
            "attempt": self.attempt,
            "cancel_requested_at": self.cancel_requested_at,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "completed_at": self.completed_at,
        })
    }
}

/// Every column, in the order of [`ExecutionRow`], for `RETURNING` and `SELECT` lists.
pub(crate) const COLUMNS: &str = "id, user_id, workflow_id, workflow_version, instance_id, status, sql_query, parameters, \
    time_window_start, time_window_end, time_zone, amc_execution_id, attempt, next_check_at, \
    submit_started_at, cancel_requested_at, error_code, error_message, result_location, result_columns, \
    row_count, triggered_by, schedule_id, scheduled_for, collection_id, collection_window, idempotency_key, request_hash, created_at, updated_at, submitting_at, \
    running_at, fetching_at, completed_at, trace_context, retry_of, results_expired_at, amc_workflow_id, batch_id";
