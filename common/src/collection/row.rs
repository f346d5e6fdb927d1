//! A collection and its windows as stored, and as the API shows them.

use super::window::Granularity;
use crate::execution::ExecutionStatus;
use crate::ids::{CollectionId, ExecutionId, InstanceId, ScheduleId, UserId, WorkflowId};
use crate::schedule::WeekStart;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use sea_orm::FromQueryResult;
use serde_json::{Value, json};

crate::text_enum! {
    /// Where a collection stands.
    pub enum CollectionStatus("collection status") {
        /// Windows start as slots and `max_concurrency` allow.
        Running = "running",
        /// No new window starts; running ones finish.
        Paused = "paused",
        /// Every window succeeded.
        Succeeded = "succeeded",
        /// Every window ended and some failed (after their attempts).
        Failed = "failed",
        /// Cancelled: no window starts; the runs still going are cancelled (at AMC too).
        Cancelled = "cancelled",
    }
}

impl CollectionStatus {
    /// Whether windows may still start or end.
    pub fn is_open(self) -> bool {
        matches!(self, Self::Running | Self::Paused)
    }
}

crate::text_enum! {
    /// Where a window stands (as stored; the API shows `queued` or `running` for an
    /// active window by its run's status).
    pub enum WindowStatus("window status") {
        /// No run yet, or waiting for its next attempt.
        Pending = "pending",
        /// Its run has not ended.
        Active = "active",
        Succeeded = "succeeded",
        /// Its last attempt failed and no attempt is left.
        Failed = "failed",
        Cancelled = "cancelled",
    }
}

crate::text_enum! {
    /// A window's status as the API shows it: an active window shows `queued` or
    /// `running` by its run's status.
    pub enum ShownStatus("window status") {
        /// No run yet, waiting for its next attempt, or its run waits for a slot.
        Queued = "queued",
        Running = "running",
        Succeeded = "succeeded",
        Failed = "failed",
        Cancelled = "cancelled",
    }
}

/// A window's status as the API shows it.
pub fn shown_status(w: WindowStatus, run: Option<ExecutionStatus>) -> ShownStatus {
    match (w, run) {
        (WindowStatus::Pending, _) => ShownStatus::Queued,
        (WindowStatus::Active, None | Some(ExecutionStatus::Queued)) => ShownStatus::Queued,
        (WindowStatus::Active, _) => ShownStatus::Running,
        (WindowStatus::Succeeded, _) => ShownStatus::Succeeded,
        (WindowStatus::Failed, _) => ShownStatus::Failed,
        (WindowStatus::Cancelled, _) => ShownStatus::Cancelled,
    }
}

/// How many windows stand where (as the API shows them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromQueryResult)]
pub struct Counts {
    pub queued: i64,
    pub running: i64,
    pub succeeded: i64,
    pub failed: i64,
    pub cancelled: i64,
}

impl Counts {
    /// `{"queued","running","succeeded","failed","cancelled"}`, as the API shows them.
    pub fn json(&self) -> Value {
        json!({
            "queued": self.queued,
            "running": self.running,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "cancelled": self.cancelled,
        })
    }
}

/// A collection as stored, with its counts and its estimated completion.
#[derive(Debug, Clone, FromQueryResult)]
pub struct CollectionRow {
    pub id: CollectionId,
    pub user_id: UserId,
    pub workflow_id: WorkflowId,
    pub instance_id: InstanceId,
    pub schedule_id: Option<ScheduleId>,
    pub name: String,
    pub start_date: NaiveDate,
    pub end_date: NaiveDate,
    pub granularity: Granularity,
    pub week_starts: WeekStart,
    pub time_zone: String,
    pub parameters: Value,
    pub sql_query: String,
    /// The workflow version it pinned when it started.
    pub workflow_version: Option<i32>,
    pub max_concurrency: i32,
    pub max_attempts: i32,
    pub status: CollectionStatus,
    pub window_count: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    #[sea_orm(nested)]
    pub counts: Counts,
    /// Mean seconds from a window's run being created to its end (succeeded windows).
    pub mean_window_seconds: Option<f64>,
}

/// The columns of `collections c` a [`CollectionRow`] reads, with its counts (the query
/// joins `LATERAL (…) k` from [`counts_lateral`]).
pub(crate) const COLUMNS: &str = "c.id, c.user_id, c.workflow_id, c.instance_id, c.schedule_id, c.name, \
    c.start_date, c.end_date, c.granularity, c.week_starts, c.time_zone, c.parameters, c.sql_query, c.workflow_version, \
    c.max_concurrency, c.max_attempts, c.status, c.window_count, c.created_at, c.updated_at, c.completed_at, \
    k.queued, k.running, k.succeeded, k.failed, k.cancelled, k.mean_window_seconds";

/// The counts of collection `c`, as `k`.
pub(crate) fn counts_lateral() -> String {
    format!(
        "LEFT JOIN LATERAL (SELECT \
           count(*) FILTER (WHERE w.status = '{pending}' OR (w.status = '{active}' AND (e.status IS NULL OR e.status = '{queued}'))) AS queued, \
           count(*) FILTER (WHERE w.status = '{active}' AND e.status IS NOT NULL AND e.status <> '{queued}') AS running, \
           count(*) FILTER (WHERE w.status = '{succeeded}') AS succeeded, \
           count(*) FILTER (WHERE w.status = '{failed}') AS failed, \
           count(*) FILTER (WHERE w.status = '{cancelled}') AS cancelled, \
           (avg(extract(epoch FROM e.completed_at - e.created_at)) FILTER (WHERE w.status = '{succeeded}'))::float8 \
             AS mean_window_seconds \
         FROM collection_windows w LEFT JOIN executions e ON e.id = w.execution_id WHERE w.collection_id = c.id) k ON true",
        pending = WindowStatus::Pending,
        active = WindowStatus::Active,
        succeeded = WindowStatus::Succeeded,
        failed = WindowStatus::Failed,
        cancelled = WindowStatus::Cancelled,
        queued = ExecutionStatus::Queued,
    )
}

impl CollectionRow {
    /// When the remaining windows should be done, from the observed runtimes: the mean
    /// time of a succeeded window times the rounds of `max_concurrency` left. `None` before
    /// a window has succeeded, or once the collection has ended.
    pub fn estimated_completion_at(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if !self.status.is_open() {
            return None;
        }
        let mean = self.mean_window_seconds?;
        let left = self.counts.queued + self.counts.running;
        let rounds = (left as f64 / f64::from(self.max_concurrency.max(1))).ceil();
        Some(now + chrono::Duration::milliseconds((mean * rounds * 1000.0) as i64))
    }

    /// The collection as `GET /collections/{id}` shows it (also its events' payload).
    pub fn public_json(&self) -> Value {
        json!({
            "id": self.id,
            "workflow_id": self.workflow_id,
            "instance_id": self.instance_id,
            "schedule_id": self.schedule_id,
            "name": self.name,
            "start": self.start_date,
            "end": self.end_date,
            "granularity": self.granularity,
            "week_starts": self.week_starts,
            "time_zone": self.time_zone,
            "parameters": self.parameters,
            "max_concurrency": self.max_concurrency,
            "max_attempts": self.max_attempts,
            "status": self.status,
            "total": self.window_count,
            "counts": self.counts.json(),
            "estimated_completion_at": self.estimated_completion_at(Utc::now()),
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "completed_at": self.completed_at,
        })
    }
}

/// One window, with its run's status.
#[derive(Debug, Clone, FromQueryResult)]
pub struct WindowRow {
    pub position: i32,
    pub window_start: NaiveDateTime,
    pub window_end: NaiveDateTime,
    pub status: WindowStatus,
    pub attempts: i32,
    pub execution_id: Option<ExecutionId>,
    pub run_status: Option<ExecutionStatus>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
}

impl WindowRow {
    /// Its status as the API shows it.
    pub fn shown_status(&self) -> ShownStatus {
        shown_status(self.status, self.run_status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn active_windows_show_their_run() {
        use ExecutionStatus as E;
        assert_eq!(
            shown_status(WindowStatus::Pending, None),
            ShownStatus::Queued
        );
        assert_eq!(
            shown_status(WindowStatus::Active, Some(E::Queued)),
            ShownStatus::Queued
        );
        for s in [E::Submitting, E::Running, E::Fetching] {
            assert_eq!(
                shown_status(WindowStatus::Active, Some(s)),
                ShownStatus::Running
            );
        }
        assert_eq!(
            shown_status(WindowStatus::Failed, Some(E::Failed)),
            ShownStatus::Failed
        );
    }
}
