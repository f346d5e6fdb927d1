//! A batch as stored, with its progress counts (read from its runs), and as the API and
//! its `batch.completed` event show it.

use crate::collection::Counts;
use crate::execution::ExecutionStatus;
use crate::ids::{BatchId, UserId, WorkflowId};
use crate::time_window::TimeWindow;
use chrono::{DateTime, NaiveDateTime, Utc};
use sea_orm::FromQueryResult;
use serde_json::{Value, json};

crate::text_enum! {
    /// Where a batch stands.
    pub enum BatchStatus("batch status") {
        /// Some of its runs have not ended.
        Running = "running",
        /// Every run succeeded.
        Succeeded = "succeeded",
        /// Every run ended and some did not succeed (failed, or cancelled one by one).
        Failed = "failed",
        /// The batch was cancelled: its runs still going are cancelled (at AMC too); it
        /// has ended once `completed_at` is set.
        Cancelled = "cancelled",
    }
}

/// A batch as stored, with its counts.
#[derive(Debug, Clone, FromQueryResult)]
pub struct BatchRow {
    pub id: BatchId,
    pub user_id: UserId,
    pub workflow_id: WorkflowId,
    /// The workflow version every run runs.
    pub workflow_version: i32,
    pub name: String,
    /// The values common to every run.
    pub parameters: Value,
    /// The window every run covers; `None`: each run got its instance's default window.
    pub time_window_start: Option<NaiveDateTime>,
    pub time_window_end: Option<NaiveDateTime>,
    pub time_zone: Option<String>,
    pub status: BatchStatus,
    pub run_count: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When its last run ended (set once, with its event).
    pub completed_at: Option<DateTime<Utc>>,
    #[sea_orm(nested)]
    pub counts: Counts,
}

/// The columns of `batches b` a [`BatchRow`] reads, with its counts (the query joins
/// `LATERAL (…) k` from [`counts_lateral`]).
pub(crate) const COLUMNS: &str = "b.id, b.user_id, b.workflow_id, b.workflow_version, b.name, b.parameters, \
    b.time_window_start, b.time_window_end, b.time_zone, b.status, b.run_count, b.created_at, b.updated_at, \
    b.completed_at, k.queued, k.running, k.succeeded, k.failed, k.cancelled";

/// The counts of batch `b` by its runs' statuses, as `k` (the runs are read by
/// `executions_batch_created_idx`): `running` counts the runs at or on their way to AMC
/// and those fetching their result.
pub(crate) fn counts_lateral() -> String {
    format!(
        "LEFT JOIN LATERAL (SELECT \
           count(*) FILTER (WHERE e.status = '{queued}') AS queued, \
           count(*) FILTER (WHERE e.status IN {at_amc}) AS running, \
           count(*) FILTER (WHERE e.status = '{succeeded}') AS succeeded, \
           count(*) FILTER (WHERE e.status = '{failed}') AS failed, \
           count(*) FILTER (WHERE e.status = '{cancelled}') AS cancelled \
         FROM executions e WHERE e.batch_id = b.id) k ON true",
        queued = ExecutionStatus::Queued,
        at_amc = ExecutionStatus::AT_AMC_SQL,
        succeeded = ExecutionStatus::Succeeded,
        failed = ExecutionStatus::Failed,
        cancelled = ExecutionStatus::Cancelled,
    )
}

impl BatchRow {
    /// The window every run covers (`None`: each run got its instance's default one).
    pub fn time_window(&self) -> Option<TimeWindow> {
        Some(TimeWindow {
            start: self.time_window_start?,
            end: self.time_window_end?,
            time_zone: self.time_zone.as_deref()?.parse().ok()?,
        })
    }

    /// The batch as `GET /batches/{id}` shows it (also its event's payload).
    pub fn public_json(&self) -> Value {
        json!({
            "id": self.id,
            "workflow_id": self.workflow_id,
            "workflow_version": self.workflow_version,
            "name": self.name,
            "parameters": self.parameters,
            "time_window": self.time_window().map(|w| json!({
                "start": w.start_amc(),
                "end": w.end_amc(),
                "time_zone": w.time_zone.name(),
            })),
            "status": self.status,
            "total": self.run_count,
            "counts": self.counts.json(),
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "completed_at": self.completed_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time_window::AMC_FORMAT;

    fn row() -> BatchRow {
        let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        BatchRow {
            id: BatchId::new(),
            user_id: UserId::new(),
            workflow_id: WorkflowId::new(),
            workflow_version: 2,
            name: "b".into(),
            parameters: json!({"tag": "x"}),
            time_window_start: None,
            time_window_end: None,
            time_zone: None,
            status: BatchStatus::Cancelled,
            run_count: 3,
            created_at: at,
            updated_at: at,
            completed_at: Some(at),
            counts: Counts {
                succeeded: 1,
                cancelled: 2,
                ..Counts::default()
            },
        }
    }

    #[test]
    fn the_payload_carries_status_total_and_counts() {
        let v = row().public_json();
        assert_eq!(v["status"], "cancelled");
        assert_eq!(v["total"], 3);
        assert_eq!(
            v["counts"],
            json!({"queued": 0, "running": 0, "succeeded": 1, "failed": 0, "cancelled": 2})
        );
        assert!(v["time_window"].is_null(), "defaulted per instance");
    }

    #[test]
    fn a_common_window_is_shown_as_amc_writes_it() {
        let mut r = row();
        r.time_window_start = NaiveDateTime::parse_from_str("2026-01-01T00:00:00", AMC_FORMAT).ok();
        r.time_window_end = NaiveDateTime::parse_from_str("2026-01-08T00:00:00", AMC_FORMAT).ok();
        r.time_zone = Some("Europe/Berlin".into());
        assert_eq!(
            r.public_json()["time_window"],
            json!({"start": "2026-01-01T00:00:00", "end": "2026-01-08T00:00:00", "time_zone": "Europe/Berlin"})
        );
    }
}
