//! The `schedules` table: a user's schedules, created against one of their workflows,
//! edited, paused and resumed; every query is scoped to its owner.

use super::policy::{CatchUp, CatchUpPolicy, Overlap};
use super::rule::CronRule;
use super::window::WindowRule;
use crate::execution::render_run;
use crate::ids::{ScheduleId, UserId, WorkflowId};
use crate::repo::{RepoError, stmt};
use crate::sql::RenderError;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use sea_orm::{ConnectionTrait, DatabaseConnection, FromQueryResult, TransactionTrait};
use serde_json::{Map, Value};
use std::time::Duration;

/// A schedule as stored.
#[derive(Debug, Clone, FromQueryResult)]
pub struct ScheduleRow {
    pub id: ScheduleId,
    pub user_id: UserId,
    pub workflow_id: WorkflowId,
    /// The workflow version it runs; `None`: always the latest.
    pub workflow_version: Option<i32>,
    pub name: String,
    pub cron: String,
    pub time_zone: String,
    pub time_window_rule: Value,
    pub parameters: Value,
    pub enabled: bool,
    pub overlap_policy: Overlap,
    pub catch_up_policy: CatchUpPolicy,
    pub catch_up_window_secs: i64,
    pub pause_after_failures: Option<i32>,
    pub consecutive_failures: i32,
    pub paused_reason: Option<String>,
    pub next_run_at: Option<DateTime<Utc>>,
    pub last_run_at: Option<DateTime<Utc>>,
    pub buffered_for: Option<DateTime<Utc>>,
    pub missed_total: i64,
    /// Ticks of the rule before an edit, due but not yet fired when it changed.
    pub carried_ticks: Option<Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub(crate) const COLUMNS: &str = "id, user_id, workflow_id, workflow_version, name, cron, time_zone, time_window_rule, \
    parameters, enabled, overlap_policy, catch_up_policy, catch_up_window_secs, pause_after_failures, \
    consecutive_failures, paused_reason, next_run_at, last_run_at, buffered_for, missed_total, \
    carried_ticks, created_at, updated_at";

impl ScheduleRow {
    /// The cron rule (stored checked; a rule that no longer parses never fires).
    pub fn rule(&self) -> Option<CronRule> {
        CronRule::parse(&self.cron).ok()
    }

    /// The schedule's zone (stored checked).
    pub fn tz(&self) -> Tz {
        self.time_zone.parse().unwrap_or(chrono_tz::UTC)
    }

    /// The window rule (stored checked).
    pub fn window(&self) -> Option<WindowRule> {
        serde_json::from_value(self.time_window_rule.clone()).ok()
    }

    pub fn catch_up(&self) -> CatchUp {
        CatchUp {
            policy: self.catch_up_policy,
            window: Duration::from_secs(self.catch_up_window_secs.max(0) as u64),
        }
    }

    /// The schedule's own parameters.
    pub fn params(&self) -> Map<String, Value> {
        self.parameters.as_object().cloned().unwrap_or_default()
    }

    /// Ticks carried over an edit of the rule.
    pub fn carried(&self) -> Vec<DateTime<Utc>> {
        self.carried_ticks
            .as_ref()
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default()
    }

    /// The schedule as `GET /schedules/{id}` shows it (also the payload of its events).
    pub fn public_json(&self) -> Value {
        serde_json::json!({
            "id": self.id,
            "workflow_id": self.workflow_id,
            "name": self.name,
            "cron": self.cron,
            "time_zone": self.time_zone,
            "time_window": self.time_window_rule,
            "parameters": self.parameters,
            "workflow_version": self.workflow_version,
            "enabled": self.enabled,
            "overlap": self.overlap_policy,
            "catch_up": {
                "policy": self.catch_up_policy,
                "window": crate::config::format_duration(self.catch_up().window),
            },
            "pause_after_failures": self.pause_after_failures,
            "consecutive_failures": self.consecutive_failures,
            "paused_reason": self.paused_reason,
            "next_run_at": self.next_run_at,
            "last_run_at": self.last_run_at,
            "missed": self.missed_total,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        })
    }
}

/// What a schedule is made of, checked.
#[derive(Debug, Clone)]
pub struct ScheduleSpec {
    pub name: String,
    pub rule: CronRule,
    pub tz: Tz,
    pub window: WindowRule,
    pub parameters: Map<String, Value>,
    pub enabled: bool,
    pub overlap: Overlap,
    pub catch_up: CatchUp,
    pub pause_after_failures: Option<i32>,
    /// The workflow version to run; `None`: the latest at each fire.
    pub workflow_version: Option<i32>,
}

/// Why a schedule was not written.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error("workflow not found")]
    WorkflowNotFound,
    #[error("schedule not found")]
    NotFound,
    /// The pinned workflow version does not exist.
    #[error("the workflow has no version {0}")]
    VersionNotFound(i32),
    /// The workflow's SQL cannot be rendered with the schedule's parameters.
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error(transparent)]
    Repo(#[from] RepoError),
}

impl From<sea_orm::DbErr> for ScheduleError {
    fn from(e: sea_orm::DbErr) -> Self {
        ScheduleError::Repo(e.into())
    }
}

/// The values a fire adds for `{{window_start}}` and `{{window_end}}` where the SQL has
/// them (`YYYY-MM-DD`).
pub(crate) fn window_params(
    sql: &str,
    window: &crate::time_window::TimeWindow,
) -> Map<String, Value> {
    let mut out = Map::new();
    for (name, t) in [("window_start", window.start), ("window_end", window.end)] {
        if crate::sql::is_known_name(sql, name) {
            out.insert(name.into(), Value::from(t.date().to_string()));
        }
    }
    out
}

/// The workflow a schedule runs: the SQL and defaults of `version` (or the latest), if
/// the user owns it.
async fn workflow_of<C: ConnectionTrait>(
    conn: &C,
    user: UserId,
    workflow: WorkflowId,
    version: Option<i32>,
) -> Result<(String, Value), ScheduleError> {
    let row = conn
        .query_one_raw(stmt(
            "SELECT v.sql_query, v.parameters FROM workflows w LEFT JOIN workflow_versions v \
               ON v.workflow_id = w.id AND v.version = coalesce($3, w.version) \
             WHERE w.id = $1 AND w.user_id = $2 AND w.deleted_at IS NULL",
            [workflow.into(), user.into(), version.into()],
        ))
        .await?
        .ok_or(ScheduleError::WorkflowNotFound)?;
    let found: Option<String> = row.try_get("", "sql_query")?;
    if found.is_none() {
        return Err(ScheduleError::VersionNotFound(version.unwrap_or_default()));
    }
    Ok((
        row.try_get("", "sql_query")?,
        row.try_get("", "parameters")?,
    ))
}

/// Checks that a fire of `spec` on the workflow renders (every placeholder has a value:
/// the workflow's defaults, the schedule's parameters or the window's).
fn check_renders(sql: &str, defaults: &Value, spec: &ScheduleSpec) -> Result<(), RenderError> {
    let window = spec.window.resolve(Utc::now(), spec.tz);
    let mut given = spec.parameters.clone();
    given.extend(window_params(sql, &window));
    render_run(sql, defaults, &given).map(|_| ())
}

/// The first tick of an enabled schedule after `after`.
fn next_tick(
    spec_rule: &CronRule,
    tz: Tz,
    enabled: bool,
    after: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    enabled.then(|| spec_rule.next_after(after, tz)).flatten()
}

/// Creates a schedule of the user's workflow; its first tick is the next one after now.
pub async fn create(
    db: &DatabaseConnection,
    user: UserId,
    workflow: WorkflowId,
    spec: &ScheduleSpec,
) -> Result<ScheduleRow, ScheduleError> {
    let (sql, defaults) = workflow_of(db, user, workflow, spec.workflow_version).await?;
    check_renders(&sql, &defaults, spec)?;
    let next = next_tick(&spec.rule, spec.tz, spec.enabled, Utc::now());
    let sql = format!(
        "INSERT INTO schedules (id, user_id, workflow_id, name, cron, time_zone, time_window_rule, parameters, \
           enabled, overlap_policy, catch_up_policy, catch_up_window_secs, pause_after_failures, next_run_at, \
           workflow_version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) RETURNING {COLUMNS}"
    );
    let values = [
        ScheduleId::new().into(),
        user.into(),
        workflow.into(),
        spec.name.clone().into(),
        spec.rule.as_str().to_owned().into(),
        spec.tz.name().to_owned().into(),
        serde_json::to_value(&spec.window)
            .unwrap_or_default()
            .into(),
        Value::Object(spec.parameters.clone()).into(),
        spec.enabled.into(),
        spec.overlap.into(),
        spec.catch_up.policy.into(),
        (spec.catch_up.window.as_secs() as i64).into(),
        spec.pause_after_failures.into(),
        next.into(),
        spec.workflow_version.into(),
    ];
    ScheduleRow::find_by_statement(stmt(&sql, values))
        .one(db)
        .await?
        .ok_or(ScheduleError::NotFound)
}

/// The user's schedule (another user's reads as missing).
pub async fn get<C: ConnectionTrait>(
    conn: &C,
    user: UserId,
    id: ScheduleId,
) -> Result<Option<ScheduleRow>, sea_orm::DbErr> {
    let sql = format!("SELECT {COLUMNS} FROM schedules WHERE id = $1 AND user_id = $2");
    ScheduleRow::find_by_statement(stmt(&sql, [id.into(), user.into()]))
        .one(conn)
        .await
}

/// A page of the user's schedules, newest first, after `after` (a `(created_at, id)`).
pub async fn list(
    db: &DatabaseConnection,
    user: UserId,
    after: Option<(DateTime<Utc>, ScheduleId)>,
    limit: u64,
) -> Result<Vec<ScheduleRow>, sea_orm::DbErr> {
    let (at, id) = after.map_or((None, None), |(a, i)| (Some(a), Some(i)));
    let sql = format!(
        "SELECT {COLUMNS} FROM schedules WHERE user_id = $1 \
           AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3)) \
         ORDER BY created_at DESC, id DESC LIMIT $4"
    );
    ScheduleRow::find_by_statement(stmt(
        &sql,
        [user.into(), at.into(), id.into(), (limit as i64).into()],
    ))
    .all(db)
    .await
}

/// A change of a schedule; `None` keeps a field.
#[derive(Debug, Clone, Default)]
pub struct SchedulePatch {
    pub name: Option<String>,
    pub rule: Option<CronRule>,
    pub tz: Option<Tz>,
    pub window: Option<WindowRule>,
    pub parameters: Option<Map<String, Value>>,
    pub enabled: Option<bool>,
    pub overlap: Option<Overlap>,
    pub catch_up: Option<CatchUp>,
    /// `Some(None)` removes the auto-pause.
    pub pause_after_failures: Option<Option<i32>>,
    /// `Some(None)` follows the latest version again.
    pub workflow_version: Option<Option<i32>>,
}

/// Applies a change. A new rule, zone or re-enabling recomputes the next tick from now (or
/// from the last fire, if that is later), so the tick in progress never fires twice;
/// re-enabling also resets the failure count.
pub async fn update(
    db: &DatabaseConnection,
    user: UserId,
    id: ScheduleId,
    patch: SchedulePatch,
) -> Result<ScheduleRow, ScheduleError> {
    let txn = db.begin().await?;
    let sql = format!("SELECT {COLUMNS} FROM schedules WHERE id = $1 AND user_id = $2 FOR UPDATE");
    let row = ScheduleRow::find_by_statement(stmt(&sql, [id.into(), user.into()]))
        .one(&txn)
        .await?
        .ok_or(ScheduleError::NotFound)?;
    let old_rule = row.rule().ok_or(ScheduleError::NotFound)?;
    let old_rule_ticks = |row: &ScheduleRow, from, to| {
        old_rule.ticks_between(from, to, row.tz(), super::plan::MISSED_ONE_BY_ONE)
    };
    let retime =
        patch.rule.is_some() || patch.tz.is_some() || patch.enabled == Some(true) && !row.enabled;
    let spec = ScheduleSpec {
        name: patch.name.unwrap_or(row.name.clone()),
        rule: patch.rule.unwrap_or_else(|| old_rule.clone()),
        tz: patch.tz.unwrap_or(row.tz()),
        window: patch
            .window
            .or_else(|| row.window())
            .ok_or(ScheduleError::NotFound)?,
        parameters: patch.parameters.unwrap_or_else(|| row.params()),
        enabled: patch.enabled.unwrap_or(row.enabled),
        overlap: patch.overlap.unwrap_or(row.overlap_policy),
        catch_up: patch.catch_up.unwrap_or(row.catch_up()),
        pause_after_failures: patch
            .pause_after_failures
            .unwrap_or(row.pause_after_failures),
        workflow_version: patch.workflow_version.unwrap_or(row.workflow_version),
    };
    let (sql_query, defaults) =
        workflow_of(&txn, user, row.workflow_id, spec.workflow_version).await?;
    check_renders(&sql_query, &defaults, &spec)?;
    let now = Utc::now();
    let next = if retime {
        let from = row.last_run_at.map_or(now, |l| l.max(now));
        next_tick(&spec.rule, spec.tz, spec.enabled, from)
    } else if spec.enabled {
        row.next_run_at
    } else {
        None
    };
    // Ticks of the old rule already due but not yet fired (a pass is about to take them)
    // are still fired: they came due before the edit.
    let mut carried = row.carried();
    if retime
        && row.enabled
        && spec.enabled
        && let Some(due) = row.next_run_at.filter(|d| *d <= now)
    {
        carried.extend(old_rule_ticks(&row, due, now));
    }
    if !spec.enabled {
        carried.clear();
    }
    let carried = (!carried.is_empty()).then(|| serde_json::to_value(&carried).unwrap_or_default());
    let resumed = spec.enabled && !row.enabled;
    let sql = format!(
        "UPDATE schedules SET name = $3, cron = $4, time_zone = $5, time_window_rule = $6, parameters = $7, \
           enabled = $8, overlap_policy = $9, catch_up_policy = $10, catch_up_window_secs = $11, \
           pause_after_failures = $12, next_run_at = $13, \
           consecutive_failures = CASE WHEN $14 THEN 0 ELSE consecutive_failures END, \
           paused_reason = CASE WHEN $8 THEN NULL ELSE paused_reason END, \
           buffered_for = CASE WHEN $8 THEN buffered_for END, carried_ticks = $15, updated_at = $16, \
           workflow_version = $17 \
         WHERE id = $1 AND user_id = $2 RETURNING {COLUMNS}"
    );
    let values = [
        id.into(),
        user.into(),
        spec.name.into(),
        spec.rule.as_str().to_owned().into(),
        spec.tz.name().to_owned().into(),
        serde_json::to_value(&spec.window)
            .unwrap_or_default()
            .into(),
        Value::Object(spec.parameters).into(),
        spec.enabled.into(),
        spec.overlap.into(),
        spec.catch_up.policy.into(),
        (spec.catch_up.window.as_secs() as i64).into(),
        spec.pause_after_failures.into(),
        next.into(),
        resumed.into(),
        carried.into(),
        now.into(),
        spec.workflow_version.into(),
    ];
    let updated = ScheduleRow::find_by_statement(stmt(&sql, values))
        .one(&txn)
        .await?
        .ok_or(ScheduleError::NotFound)?;
    txn.commit().await?;
    Ok(updated)
}

/// Pauses a schedule by hand (its ticks stop; resuming starts again from then).
pub async fn pause(
    db: &DatabaseConnection,
    user: UserId,
    id: ScheduleId,
) -> Result<ScheduleRow, ScheduleError> {
    let sql = format!(
        "UPDATE schedules SET enabled = false, next_run_at = NULL, buffered_for = NULL, carried_ticks = NULL, \
           paused_reason = coalesce(paused_reason, 'paused by the user'), updated_at = now() \
         WHERE id = $1 AND user_id = $2 RETURNING {COLUMNS}"
    );
    ScheduleRow::find_by_statement(stmt(&sql, [id.into(), user.into()]))
        .one(db)
        .await?
        .ok_or(ScheduleError::NotFound)
}

/// Resumes a schedule: its next tick after now, its failure count reset.
pub async fn resume(
    db: &DatabaseConnection,
    user: UserId,
    id: ScheduleId,
) -> Result<ScheduleRow, ScheduleError> {
    update(
        db,
        user,
        id,
        SchedulePatch {
            enabled: Some(true),
            ..Default::default()
        },
    )
    .await
}

/// Deletes a schedule (its runs stay, without the link).
pub async fn delete(
    db: &DatabaseConnection,
    user: UserId,
    id: ScheduleId,
) -> Result<bool, sea_orm::DbErr> {
    let r = db
        .execute_raw(stmt(
            "DELETE FROM schedules WHERE id = $1 AND user_id = $2",
            [id.into(), user.into()],
        ))
        .await?;
    Ok(r.rows_affected() == 1)
}

/// One fire of a preview: when, and its window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviewFire {
    pub at: DateTime<Utc>,
    pub window: crate::time_window::TimeWindow,
}

/// The next `count` fires strictly after `from`, each with its resolved window.
pub fn preview(row: &ScheduleRow, from: DateTime<Utc>, count: usize) -> Vec<PreviewFire> {
    let (Some(rule), Some(window)) = (row.rule(), row.window()) else {
        return Vec::new();
    };
    let tz = row.tz();
    let mut out = Vec::with_capacity(count);
    let mut at = from;
    while out.len() < count {
        let Some(next) = rule.next_after(at, tz) else {
            break;
        };
        out.push(PreviewFire {
            at: next,
            window: window.resolve(next, tz),
        });
        at = next;
    }
    out
}

/// What a schedule made from a past run takes from it (`POST /schedules` with
/// `from_execution_id`): its workflow, its parameters (less the window's own
/// placeholders, which each fire fills), a `rolling` window of its length and lag, its zone.
#[derive(Debug, Clone)]
pub struct FromRun {
    pub workflow_id: WorkflowId,
    pub parameters: Map<String, Value>,
    pub window: WindowRule,
    pub tz: Tz,
}

impl FromRun {
    pub fn of(run: &crate::execution::ExecutionRow, now: DateTime<Utc>) -> Self {
        let tz: Tz = run.time_zone.parse().unwrap_or(chrono_tz::UTC);
        let window = crate::time_window::TimeWindow {
            start: run.time_window_start,
            end: run.time_window_end,
            time_zone: tz,
        };
        let mut parameters = run.parameters.as_object().cloned().unwrap_or_default();
        parameters.remove("window_start");
        parameters.remove("window_end");
        Self {
            workflow_id: run.workflow_id,
            parameters,
            window: WindowRule::rolling_like(&window, now.with_timezone(&tz).date_naive()),
            tz,
        }
    }
}
