//! What a schedule did: its run history (every tick and trigger, newest first), its
//! metrics, and runs started by hand (`trigger`), which never take a tick's key.

use super::policy::RunOutcome;
use super::store::{ScheduleRow, get, window_params};
use crate::execution::{
    ExecutionRow, ExecutionStatus as Status, Links, NewExecution, TriggeredBy, insert_batch,
    queued_row_of, records_of, render_run,
};
use crate::ids::{ExecutionId, InstanceId, ScheduleId, ScheduleRunId, UserId};
use crate::repo::stmt;
use crate::sql::RenderError;
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, FromQueryResult, TransactionTrait};
use serde_json::Value;

/// One entry of the run history, with its run's outcome where it has one.
#[derive(Debug, Clone, FromQueryResult)]
pub struct RunEntry {
    pub id: ScheduleRunId,
    pub scheduled_for: DateTime<Utc>,
    pub fired_at: DateTime<Utc>,
    pub outcome: RunOutcome,
    pub execution_id: Option<ExecutionId>,
    /// Ticks this entry stands for (more than one only for a `missed` entry past 100).
    pub missed_count: i64,
    pub status: Option<Status>,
    pub row_count: Option<i64>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
}

/// A page of the history, newest `scheduled_for` first, after `after`; `None` when the
/// schedule is not the user's.
pub async fn runs(
    db: &DatabaseConnection,
    user: UserId,
    schedule: ScheduleId,
    after: Option<(DateTime<Utc>, ScheduleRunId)>,
    limit: u64,
) -> Result<Option<Vec<RunEntry>>, DbErr> {
    if get(db, user, schedule).await?.is_none() {
        return Ok(None);
    }
    let (at, id) = after.map_or((None, None), |(a, i)| (Some(a), Some(i)));
    let rows = RunEntry::find_by_statement(stmt(
        "SELECT r.id, r.scheduled_for, r.fired_at, r.outcome, r.execution_id, r.missed_count, \
           e.status, e.row_count, coalesce(e.error_code, r.error_code) AS error_code, \
           coalesce(e.error_message, r.error_message) AS error_message \
         FROM schedule_runs r LEFT JOIN executions e ON e.id = r.execution_id \
         WHERE r.schedule_id = $1 AND ($2::timestamptz IS NULL OR (r.scheduled_for, r.id) < ($2, $3)) \
         ORDER BY r.scheduled_for DESC, r.id DESC LIMIT $4",
        [schedule.into(), at.into(), id.into(), (limit as i64).into()],
    ))
    .all(db)
    .await?;
    Ok(Some(rows))
}

/// A schedule's figures (CONTRACT § Schedules).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ScheduleMetrics {
    /// Runs it started (ticks and triggers).
    pub runs: i64,
    pub succeeded: i64,
    pub failed: i64,
    /// Succeeded of the runs that ended succeeded or failed; `None` before any did.
    pub success_rate: Option<f64>,
    /// Mean seconds from submission to success.
    pub mean_runtime_seconds: Option<f64>,
    pub last_run_at: Option<DateTime<Utc>>,
    pub next_run_at: Option<DateTime<Utc>>,
    /// Ticks recorded `missed` (not those caught up).
    pub missed: i64,
}

#[derive(Debug, FromQueryResult)]
struct Counts {
    runs: i64,
    succeeded: i64,
    failed: i64,
    mean_runtime_seconds: Option<f64>,
}

/// The user's schedule's metrics (`None`: not the user's).
pub async fn metrics(
    db: &DatabaseConnection,
    user: UserId,
    schedule: ScheduleId,
) -> Result<Option<ScheduleMetrics>, DbErr> {
    let Some(s) = get(db, user, schedule).await? else {
        return Ok(None);
    };
    let c = Counts::find_by_statement(stmt(
        "SELECT count(*) AS runs, count(*) FILTER (WHERE status = $2) AS succeeded, \
           count(*) FILTER (WHERE status = $3) AS failed, \
           (avg(extract(epoch FROM completed_at - coalesce(submitting_at, created_at))) \
              FILTER (WHERE status = $2))::float8 AS mean_runtime_seconds \
         FROM executions WHERE schedule_id = $1",
        [
            schedule.into(),
            Status::Succeeded.into(),
            Status::Failed.into(),
        ],
    ))
    .one(db)
    .await?
    .ok_or_else(|| DbErr::RecordNotFound("counts".into()))?;
    let ended = c.succeeded + c.failed;
    Ok(Some(ScheduleMetrics {
        runs: c.runs,
        succeeded: c.succeeded,
        failed: c.failed,
        success_rate: (ended > 0).then(|| c.succeeded as f64 / ended as f64),
        mean_runtime_seconds: c.mean_runtime_seconds,
        last_run_at: s.last_run_at,
        next_run_at: s.next_run_at,
        missed: s.missed_total,
    }))
}

/// Why a trigger was refused.
#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    #[error("schedule not found")]
    NotFound,
    /// The run cannot be rendered (a placeholder without a value).
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error(transparent)]
    Db(#[from] DbErr),
}

#[derive(Debug, FromQueryResult)]
struct WithWorkflow {
    #[sea_orm(nested)]
    schedule: ScheduleRow,
    sql_query: String,
    wf_parameters: Value,
    wf_version: i32,
    instance_id: InstanceId,
}

/// A run of the schedule started by hand, at `at` (`None`: now), its window resolved as a
/// tick at that instant would be. It overrides `skip`; `next_run_at` stays; its history
/// entry is `triggered`, and its run has no `scheduled_for`, so it never takes a tick's
/// key. A run for a later instant waits `queued` until then. Returns the run and the
/// instant it is for.
pub async fn trigger(
    db: &DatabaseConnection,
    user: UserId,
    schedule: ScheduleId,
    at: Option<DateTime<Utc>>,
) -> Result<(ExecutionRow, DateTime<Utc>), TriggerError> {
    let txn = db.begin().await?;
    let cols: Vec<String> = super::store::COLUMNS
        .split(',')
        .map(|c| format!("s.{}", c.trim()))
        .collect();
    let sql = format!(
        "SELECT {}, v.sql_query, v.parameters AS wf_parameters, v.version AS wf_version, w.instance_id \
         FROM schedules s JOIN workflows w ON w.id = s.workflow_id AND w.deleted_at IS NULL \
         JOIN workflow_versions v ON v.workflow_id = w.id AND v.version = coalesce(s.workflow_version, w.version) WHERE s.id = $1 AND s.user_id = $2 FOR SHARE OF s",
        cols.join(", ")
    );
    let row = WithWorkflow::find_by_statement(stmt(&sql, [schedule.into(), user.into()]))
        .one(&txn)
        .await?
        .ok_or(TriggerError::NotFound)?;
    let now = crate::execution::now_micros();
    let at = at.unwrap_or(now);
    let s = &row.schedule;
    let window = s
        .window()
        .ok_or(TriggerError::NotFound)?
        .resolve(at, s.tz());
    let mut given = s.params();
    given.extend(window_params(&row.sql_query, &window));
    let rendered = render_run(&row.sql_query, &row.wf_parameters, &given)?;
    let id = ExecutionId::new();
    let new = NewExecution {
        user_id: user,
        workflow_id: s.workflow_id,
        workflow_version: row.wf_version,
        instance_id: row.instance_id,
        sql_query: rendered.sql_query,
        parameters: rendered.parameters,
        window,
        triggered_by: TriggeredBy::Schedule,
        idempotency: None,
        links: Links {
            schedule_id: Some(schedule),
            scheduled_for: None,
            collection_id: None,
            batch_id: None,
            collection_window: None,
            retry_of: None,
        },
        trace: crate::telemetry::trace::outgoing(),
    };
    let mut run = queued_row_of(id, &new, now);
    // Not admitted before its instant.
    run.next_check_at = (at > now).then_some(at);
    insert_batch(&txn, records_of(std::slice::from_ref(&run)), now).await?;
    txn.execute_raw(stmt(
        "INSERT INTO schedule_runs (id, schedule_id, scheduled_for, fired_at, outcome, execution_id) \
         VALUES ($1, $2, $3, $4, $5, $6)",
        [
            ScheduleRunId::new().into(),
            schedule.into(),
            at.into(),
            now.into(),
            RunOutcome::Triggered.into(),
            id.into(),
        ],
    ))
    .await?;
    txn.commit().await?;
    Ok((run, at))
}
