//! A collection and its windows as stored, and as the API shows them.

use super::window::Granularity;
use crate::execution::ExecutionStatus;
use crate::ids::{CollectionId, ExecutionId, InstanceId, ScheduleId, UserId, WorkflowId};
use crate::schedule::WeekStart;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use sea_orm::{ColIdx, DbErr, FromQueryResult, QueryResult, TryGetError, TryGetable};
use serde::Deserialize;
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

/// Whether window `w` (its run `e` joined) shows `status`, as SQL: [`shown_status`] in
/// SQL.
pub(crate) fn shown_status_sql(status: ShownStatus) -> String {
    let stored = |w: WindowStatus| format!("w.status = '{w}'");
    match status {
        ShownStatus::Queued => format!(
            "({} OR ({} AND (e.status IS NULL OR e.status = '{queued}')))",
            stored(WindowStatus::Pending),
            stored(WindowStatus::Active),
            queued = ExecutionStatus::Queued
        ),
        ShownStatus::Running => format!(
            "({} AND e.status IS NOT NULL AND e.status <> '{queued}')",
            stored(WindowStatus::Active),
            queued = ExecutionStatus::Queued
        ),
        ShownStatus::Succeeded => stored(WindowStatus::Succeeded),
        ShownStatus::Failed => stored(WindowStatus::Failed),
        ShownStatus::Cancelled => stored(WindowStatus::Cancelled),
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

/// How many failed windows a collection's body (and its events) lists; `counts.failed`
/// says how many there are.
pub const FAILED_WINDOWS_LISTED: i64 = 100;

/// A collection as stored, with its counts, its first failed windows and its estimated
/// completion.
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
    /// Why it has its status when neither its windows nor its owner decided it (a
    /// collection closed by a migration).
    pub status_reason: Option<String>,
    #[sea_orm(nested)]
    pub counts: Counts,
    /// Its first [`FAILED_WINDOWS_LISTED`] failed windows, oldest first.
    pub failed_windows: Windows,
    /// Mean seconds from a window's run being created to its end (succeeded windows).
    pub mean_window_seconds: Option<f64>,
}

/// The columns of `collections c` a [`CollectionRow`] reads, with its counts and failed
/// windows (the query joins [`joins`]).
pub(crate) const COLUMNS: &str = "c.id, c.user_id, c.workflow_id, c.instance_id, c.schedule_id, c.name, \
    c.start_date, c.end_date, c.granularity, c.week_starts, c.time_zone, c.parameters, c.sql_query, c.workflow_version, \
    c.max_concurrency, c.max_attempts, c.status, c.window_count, c.created_at, c.updated_at, c.completed_at, \
    c.status_reason, k.queued, k.running, k.succeeded, k.failed, k.cancelled, k.mean_window_seconds, f.failed_windows";

/// What a [`CollectionRow`] of collection `c` joins: its counts as `k`, its first failed
/// windows as `f`.
pub(crate) fn joins() -> String {
    format!(
        "{} LEFT JOIN LATERAL (SELECT coalesce(jsonb_agg(p.doc ORDER BY p.position), '[]'::jsonb) AS failed_windows \
           FROM (SELECT w.position, {WINDOW_JSON} AS doc FROM collection_windows w \
             LEFT JOIN executions e ON e.id = w.execution_id \
             WHERE w.collection_id = c.id AND w.status = '{failed}' ORDER BY w.position LIMIT {FAILED_WINDOWS_LISTED}) p) f ON true",
        counts_lateral(),
        failed = WindowStatus::Failed,
    )
}

/// The counts of collection `c`, as `k`.
fn counts_lateral() -> String {
    format!(
        "LEFT JOIN LATERAL (SELECT \
           count(*) FILTER (WHERE {queued}) AS queued, \
           count(*) FILTER (WHERE {running}) AS running, \
           count(*) FILTER (WHERE {succeeded}) AS succeeded, \
           count(*) FILTER (WHERE {failed}) AS failed, \
           count(*) FILTER (WHERE {cancelled}) AS cancelled, \
           (avg(extract(epoch FROM e.completed_at - e.created_at)) FILTER (WHERE {succeeded}))::float8 \
             AS mean_window_seconds \
         FROM collection_windows w LEFT JOIN executions e ON e.id = w.execution_id WHERE w.collection_id = c.id) k ON true",
        queued = shown_status_sql(ShownStatus::Queued),
        running = shown_status_sql(ShownStatus::Running),
        succeeded = shown_status_sql(ShownStatus::Succeeded),
        failed = shown_status_sql(ShownStatus::Failed),
        cancelled = shown_status_sql(ShownStatus::Cancelled),
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
            "status_reason": self.status_reason,
            "failed_windows": self.failed_windows.0.iter().map(WindowRow::public_json).collect::<Vec<_>>(),
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "completed_at": self.completed_at,
        })
    }
}

/// One window, with its run's status and the runs of its attempts.
#[derive(Debug, Clone, Deserialize)]
pub struct WindowRow {
    pub position: i32,
    pub window_start: NaiveDateTime,
    pub window_end: NaiveDateTime,
    pub status: WindowStatus,
    pub attempts: i32,
    /// Its current (or last) run.
    pub execution_id: Option<ExecutionId>,
    pub run_status: Option<ExecutionStatus>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    /// Every run made for it, oldest first (`retry-failed` resets `attempts`, not these).
    pub execution_ids: Vec<ExecutionId>,
}

/// Window `w` of `collection_windows` (with its run `e` joined) as the JSON a
/// [`WindowRow`] reads.
pub(crate) const WINDOW_JSON: &str = "jsonb_build_object('position', w.position, 'window_start', w.window_start, \
    'window_end', w.window_end, 'status', w.status, 'attempts', w.attempts, 'execution_id', w.execution_id, \
    'run_status', e.status, 'error_code', w.error_code, 'error_message', w.error_message, \
    'execution_ids', (SELECT coalesce(jsonb_agg(x.id ORDER BY x.created_at, x.id), '[]'::jsonb) FROM executions x \
      WHERE x.collection_id = w.collection_id AND x.collection_window = w.position))";

impl WindowRow {
    /// Its status as the API shows it.
    pub fn shown_status(&self) -> ShownStatus {
        shown_status(self.status, self.run_status)
    }

    /// The window as `GET /collections/{id}/windows` shows it.
    pub fn public_json(&self) -> Value {
        let error =
            crate::execution::error_json(self.error_code.as_ref(), self.error_message.as_deref());
        json!({
            "index": self.position,
            "start": self.window_start.format(crate::time_window::AMC_FORMAT).to_string(),
            "end": self.window_end.format(crate::time_window::AMC_FORMAT).to_string(),
            "status": self.shown_status(),
            "attempts": self.attempts,
            "execution_id": self.execution_id,
            "execution_ids": self.execution_ids,
            "error": error,
        })
    }
}

/// Windows read from one JSON array column (each written by [`WINDOW_JSON`]).
#[derive(Debug, Clone, Default)]
pub struct Windows(pub Vec<WindowRow>);

impl TryGetable for Windows {
    fn try_get_by<I: ColIdx>(res: &QueryResult, index: I) -> Result<Self, TryGetError> {
        let v = <Value as TryGetable>::try_get_by(res, index)?;
        serde_json::from_value(v)
            .map(Windows)
            .map_err(|e| TryGetError::DbErr(DbErr::Json(e.to_string())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_read_from_their_json_and_show_as_the_api_does() {
        let run = "01900000-0000-7000-8000-000000000001";
        let first = "01900000-0000-7000-8000-000000000002";
        // As WINDOW_JSON writes a failed window with two attempts.
        let doc = json!([{"position": 5, "window_start": "2026-01-05T00:00:00",
            "window_end": "2026-01-12T00:00:00", "status": "failed", "attempts": 2,
            "execution_id": run, "run_status": "failed", "error_code": "amc_failed",
            "error_message": "compile", "execution_ids": [first, run]}]);
        let Windows(w) = serde_json::from_value(doc).map(Windows).unwrap();
        assert_eq!(w[0].shown_status(), ShownStatus::Failed);
        assert_eq!(
            w[0].public_json(),
            json!({"index": 5, "start": "2026-01-05T00:00:00", "end": "2026-01-12T00:00:00",
                   "status": "failed", "attempts": 2, "execution_id": run,
                   "execution_ids": [first, run], "error": {"code": "amc_failed", "message": "compile"}})
        );
        // A window without a run yet.
        let doc = json!([{"position": 0, "window_start": "2026-01-05T00:00:00",
            "window_end": "2026-01-12T00:00:00", "status": "pending", "attempts": 0,
            "execution_id": null, "run_status": null, "error_code": null,
            "error_message": null, "execution_ids": []}]);
        let Windows(w) = serde_json::from_value(doc).map(Windows).unwrap();
        assert_eq!(w[0].public_json()["error"], Value::Null);
        assert_eq!(w[0].shown_status(), ShownStatus::Queued);
    }

    #[test]
    fn each_shown_status_has_its_own_sql() {
        let all = [
            ShownStatus::Queued,
            ShownStatus::Running,
            ShownStatus::Succeeded,
            ShownStatus::Failed,
            ShownStatus::Cancelled,
        ];
        let sql: std::collections::HashSet<String> =
            all.iter().map(|s| shown_status_sql(*s)).collect();
        assert_eq!(sql.len(), all.len());
        // Queued: a window with no run, or whose run waits; running: its run is under way.
        assert!(shown_status_sql(ShownStatus::Queued).contains("w.status = 'pending'"));
        assert!(shown_status_sql(ShownStatus::Running).contains("e.status <> 'queued'"));
    }

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
