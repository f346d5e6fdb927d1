//! `/schedules`: cron rules in the user's time zone that run a workflow, with their
//! preview, run history, metrics and triggers (CONTRACT § Schedules). The scheduler
//! process fires them; these handlers only record and read.

use super::ApiTags;
use super::executions::{ExecutionBody, TimeWindowBody};
use crate::auth::BearerAuth;
use crate::error::status::{AUTH, BODY, E404, E422};
use crate::error::{ApiError, Errors};
use crate::input::{
    Bool, CatchUpSpec, Choice, Clearable, Cron, Id, In, Instant, Int, JsonObject, Name, Nullable,
    OptionalJson, TimeZone, WindowSpec, opt, parse_instant,
};
use crate::page;
use crate::params::{Page, Params};
use crate::state::AppState;
use chrono::{DateTime, Utc};
use common::execution::{self, ExecutionStatus};
use common::ids::{ExecutionId, ScheduleId, ScheduleRunId, UserId, WorkflowId};
use common::jobs::SubmitJob;
use common::schedule::{
    self as sched, CatchUp, CatchUpPolicy, Overlap, RunOutcome, ScheduleError, SchedulePatch,
    ScheduleRow, ScheduleSpec, WindowRule,
};
use common::sql::RenderError;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde_json::Value;
use std::sync::Arc;
use uuid::Uuid;

/// A new schedule. Send `workflow_id`, or `from_execution_id` to take the workflow, the
/// parameters and a `rolling` window of that run's length from a past run (any field
/// sent overrides them).
#[derive(Debug, Object)]
pub struct CreateSchedule {
    pub workflow_id: Option<In<Id>>,
    pub from_execution_id: Option<In<Id>>,
    pub name: In<Name<200>>,
    pub cron: In<Cron>,
    /// IANA zone the rule and the windows are read in (default `UTC`, or the run's).
    pub time_zone: Option<In<TimeZone>>,
    pub time_window: Option<In<WindowSpec>>,
    /// Values of the workflow's placeholders; they override its defaults.
    pub parameters: Option<In<JsonObject>>,
    /// Default `true`.
    pub enabled: Option<In<Bool>>,
    /// `skip` (default), `buffer_one`, `cancel_other` or `allow_all`.
    pub overlap: Option<In<Choice<Overlap>>>,
    pub catch_up: Option<In<CatchUpSpec>>,
    /// N consecutive failed runs pause the schedule (null: never).
    pub pause_after_failures: Option<In<Int<1, 1000>>>,
    /// Pin a workflow version (absent or null: each fire runs the latest).
    pub workflow_version: Option<In<Int<1, 1000000>>>,
}

/// A change of a schedule: fields sent replace the stored ones; `pause_after_failures:
/// null` removes the auto-pause. A new `cron` or `time_zone` recomputes `next_run_at`
/// (the tick in progress is not fired twice).
#[derive(Debug, Object)]
pub struct UpdateSchedule {
    pub name: Option<In<Name<200>>>,
    pub cron: Option<In<Cron>>,
    pub time_zone: Option<In<TimeZone>>,
    pub time_window: Option<In<WindowSpec>>,
    pub parameters: Option<In<JsonObject>>,
    pub enabled: Option<In<Bool>>,
    pub overlap: Option<In<Choice<Overlap>>>,
    pub catch_up: Option<In<CatchUpSpec>>,
    /// `null` removes the auto-pause.
    pub pause_after_failures: Clearable<Int<1, 1000>>,
    /// Pin a workflow version; `null` follows the latest again.
    pub workflow_version: Clearable<Int<1, 1000000>>,
}

/// A catch-up policy.
#[derive(Debug, Object)]
pub struct CatchUpBody {
    pub policy: CatchUpPolicy,
    /// How old a missed tick may be and still be fired (`24h`).
    pub window: String,
}

/// A schedule.
#[derive(Debug, Object)]
pub struct ScheduleBody {
    pub id: Uuid,
    pub workflow_id: Uuid,
    /// The pinned workflow version; null: each fire runs the latest.
    pub workflow_version: Nullable<i32>,
    pub name: String,
    pub cron: String,
    pub time_zone: String,
    /// The window rule (`{"kind":"previous_day","lag_days":0}`, …).
    pub time_window: Value,
    pub parameters: Value,
    pub enabled: bool,
    pub overlap: Overlap,
    pub catch_up: CatchUpBody,
    pub pause_after_failures: Nullable<i32>,
    /// Failed runs in a row (reset by a success or by resuming).
    pub consecutive_failures: i32,
    /// Why it is paused (`paused by the user`, `paused after 3 consecutive failed runs`).
    pub paused_reason: Nullable<String>,
    /// Its next tick (null while paused).
    pub next_run_at: Nullable<DateTime<Utc>>,
    pub last_run_at: Nullable<DateTime<Utc>>,
    /// Ticks recorded `missed`.
    pub missed: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<ScheduleRow> for ScheduleBody {
    fn from(s: ScheduleRow) -> Self {
        let catch_up = s.catch_up();
        Self {
            id: s.id.0,
            workflow_id: s.workflow_id.0,
            workflow_version: s.workflow_version.into(),
            catch_up: CatchUpBody {
                policy: catch_up.policy,
                window: common::config::format_duration(catch_up.window),
            },
            name: s.name,
            cron: s.cron,
            time_zone: s.time_zone,
            time_window: s.time_window_rule,
            parameters: s.parameters,
            enabled: s.enabled,
            overlap: s.overlap_policy,
            pause_after_failures: s.pause_after_failures.into(),
            consecutive_failures: s.consecutive_failures,
            paused_reason: s.paused_reason.into(),
            next_run_at: s.next_run_at.into(),
            last_run_at: s.last_run_at.into(),
            missed: s.missed_total,
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}

/// A page of the user's schedules.
#[derive(Debug, Object)]
pub struct ScheduleList {
    pub items: Vec<ScheduleBody>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Nullable<String>,
}

/// One fire of a preview.
#[derive(Debug, Object)]
pub struct PreviewFireBody {
    /// When it fires (UTC).
    pub at: DateTime<Utc>,
    /// The window it resolves to (local times in `time_zone`).
    pub time_window: TimeWindowBody,
}

/// The next fires.
#[derive(Debug, Object)]
pub struct PreviewBody {
    pub fires: Vec<PreviewFireBody>,
}

/// A run's error, or why a fire made no run.
#[derive(Debug, Object)]
pub struct RunErrorBody {
    pub code: String,
    pub message: Nullable<String>,
}

/// One entry of a schedule's run history.
#[derive(Debug, Object)]
pub struct RunEntryBody {
    /// The tick (or, for a trigger, its own instant).
    pub scheduled_for: DateTime<Utc>,
    /// When the scheduler recorded it.
    pub fired_at: DateTime<Utc>,
    pub outcome: RunOutcome,
    pub execution_id: Nullable<Uuid>,
    /// The run's status.
    pub status: Nullable<ExecutionStatus>,
    pub row_count: Nullable<i64>,
    pub error: Nullable<RunErrorBody>,
    /// Ticks this entry stands for: 1, or past 100 missed ticks in a row, the rest.
    pub missed_count: i64,
}

/// A page of the run history, newest `scheduled_for` first.
#[derive(Debug, Object)]
pub struct RunList {
    pub items: Vec<RunEntryBody>,
    pub next_cursor: Nullable<String>,
}

/// A schedule's figures.
#[derive(Debug, Object)]
pub struct MetricsBody {
    /// Runs it started (ticks and triggers).
    pub runs: i64,
    pub succeeded: i64,
    pub failed: i64,
    /// Succeeded over succeeded + failed; null before either.
    pub success_rate: Nullable<f64>,
    /// Mean seconds from submission to success.
    pub mean_runtime_seconds: Nullable<f64>,
    pub last_run_at: Nullable<DateTime<Utc>>,
    pub next_run_at: Nullable<DateTime<Utc>>,
    /// Ticks recorded `missed` (not those caught up).
    pub missed: i64,
}

/// A run by hand.
#[derive(Debug, Object)]
pub struct TriggerBody {
    /// The instant to run at (RFC 3339; absent: now). Its window resolves as a tick at
    /// that instant would.
    pub at: Option<In<Instant>>,
}

#[derive(ApiResponse)]
pub enum CreatedSchedule {
    /// The schedule was created.
    #[oai(status = 201)]
    Created(Json<ScheduleBody>),
}

#[derive(ApiResponse)]
pub enum ScheduleResponse {
    /// The schedule.
    #[oai(status = 200)]
    Ok(Json<ScheduleBody>),
}

#[derive(ApiResponse)]
pub enum ScheduleListResponse {
    /// The user's schedules, newest first.
    #[oai(status = 200)]
    Ok(Json<ScheduleList>),
}

#[derive(ApiResponse)]
pub enum Deleted {
    /// Deleted (its runs stay, without the link).
    #[oai(status = 204)]
    NoContent,
}

#[derive(ApiResponse)]
pub enum PreviewResponse {
    /// The next fires.
    #[oai(status = 200)]
    Ok(Json<PreviewBody>),
}

#[derive(ApiResponse)]
pub enum RunsResponse {
    /// The run history.
    #[oai(status = 200)]
    Ok(Json<RunList>),
}

#[derive(ApiResponse)]
pub enum MetricsResponse {
    /// The schedule's figures.
    #[oai(status = 200)]
    Ok(Json<MetricsBody>),
}

#[derive(ApiResponse)]
pub enum TriggeredResponse {
    /// The run was recorded (and queued; for a later `at`, it waits until then).
    #[oai(status = 202)]
    Accepted(Json<ExecutionBody>),
}

/// Schedule endpoints.
pub struct SchedulesApi {
    pub state: Arc<AppState>,
}

/// The field below `parent` that an error names (`time_window.days`; `time_window` alone
/// when the error is about the whole object).
fn below(parent: &str, field: &str) -> String {
    if field.is_empty() {
        parent.to_string()
    } else {
        format!("{parent}.{field}")
    }
}

fn window_of(v: Option<Value>) -> Result<Option<WindowRule>, ApiError> {
    v.map(|v| {
        WindowRule::from_json(&v)
            .map_err(|e| ApiError::field(&below("time_window", e.field), e.message))
    })
    .transpose()
}

fn catch_up_of(v: Option<Value>) -> Result<Option<CatchUp>, ApiError> {
    v.map(|v| {
        CatchUp::from_json(&v).map_err(|(field, m)| ApiError::field(&below("catch_up", field), m))
    })
    .transpose()
}

fn schedule_error(e: ScheduleError) -> ApiError {
    match e {
        ScheduleError::WorkflowNotFound => ApiError::not_found("workflow"),
        ScheduleError::NotFound => ApiError::not_found("schedule"),
        e @ ScheduleError::VersionNotFound(_) => ApiError::field("workflow_version", e.to_string()),
        ScheduleError::Render(e) => render_error(e),
        ScheduleError::Repo(e) => ApiError::from(e),
    }
}

pub(crate) fn render_error(e: RenderError) -> ApiError {
    let msg = e.to_string();
    match &e {
        RenderError::Missing(name)
        | RenderError::Unknown(name)
        | RenderError::InvalidValue { name, .. } => {
            ApiError::field(&format!("parameters.{name}"), msg)
        }
    }
}

impl SchedulesApi {
    async fn owned(&self, user: UserId, id: Uuid) -> Result<ScheduleRow, ApiError> {
        sched::get(&self.state.db, user, ScheduleId(id))
            .await
            .map_err(ApiError::internal)?
            .ok_or_else(|| ApiError::not_found("schedule"))
    }

    fn open_cursor(
        &self,
        scope: &[u8],
        cursor: Option<String>,
    ) -> Result<Option<(DateTime<Utc>, Uuid)>, ApiError> {
        page::open_key(&self.state.cursors, scope, cursor)
    }
}

#[OpenApi(tag = "ApiTags::Schedules")]
impl SchedulesApi {
    /// Create a schedule of one of the user's workflows (or of a past run's workflow,
    /// parameters and window length). Its first tick is the next one after now.
    #[oai(path = "/schedules", method = "post", operation_id = "createSchedule")]
    async fn create(
        &self,
        auth: BearerAuth,
        body: Json<CreateSchedule>,
    ) -> Result<CreatedSchedule, Errors<{ AUTH | BODY | E404 }>> {
        let user = auth.0.user_id;
        let b = body.0;
        let workflow = opt(b.workflow_id, "workflow_id")?;
        let from = opt(b.from_execution_id, "from_execution_id")?;
        let base = match (workflow, from) {
            (Some(_), Some(_)) => {
                return Err(ApiError::field(
                    "from_execution_id",
                    "send workflow_id or from_execution_id, not both",
                )
                .into());
            }
            (None, None) => {
                return Err(
                    ApiError::field("workflow_id", "is required (or from_execution_id)").into(),
                );
            }
            (Some(w), None) => (WorkflowId(w), None),
            (None, Some(e)) => {
                let run = execution::find_for_user(&self.state.db, user, ExecutionId(e))
                    .await
                    .map_err(ApiError::internal)?
                    .ok_or_else(|| ApiError::not_found("execution"))?;
                let from = sched::store::FromRun::of(&run, Utc::now());
                (from.workflow_id, Some(from))
            }
        };
        let (workflow_id, from) = base;
        let window = match (window_of(opt(b.time_window, "time_window")?)?, &from) {
            (Some(w), _) => w,
            (None, Some(f)) => f.window.clone(),
            (None, None) => return Err(ApiError::field("time_window", "is required").into()),
        };
        let spec = ScheduleSpec {
            name: b.name.get("name")?,
            rule: b.cron.get("cron")?,
            tz: opt(b.time_zone, "time_zone")?
                .or(from.as_ref().map(|f| f.tz))
                .unwrap_or(chrono_tz::UTC),
            window,
            parameters: opt(b.parameters, "parameters")?
                .or_else(|| from.as_ref().map(|f| f.parameters.clone()))
                .unwrap_or_default(),
            enabled: opt(b.enabled, "enabled")?.unwrap_or(true),
            overlap: opt(b.overlap, "overlap")?.unwrap_or(Overlap::Skip),
            catch_up: catch_up_of(opt(b.catch_up, "catch_up")?)?.unwrap_or_default(),
            pause_after_failures: opt(b.pause_after_failures, "pause_after_failures")?,
            workflow_version: opt(b.workflow_version, "workflow_version")?,
        };
        let row = sched::create(&self.state.db, user, workflow_id, &spec)
            .await
            .map_err(schedule_error)?;
        Ok(CreatedSchedule::Created(Json(row.into())))
    }

    /// The user's schedules, newest first (`cursor`, `limit` ≤ 500, default 50).
    #[oai(path = "/schedules", method = "get", operation_id = "listSchedules")]
    async fn list(
        &self,
        auth: BearerAuth,
        paging: Params<Page<500>>,
    ) -> Result<ScheduleListResponse, Errors<{ AUTH | E422 }>> {
        let user = auth.0.user_id;
        let scope = page::scope(b"schedules", user.0);
        let after = self.open_cursor(&scope, paging.0.cursor)?;
        let limit = page::limit(paging.0.limit);
        let mut rows = sched::list(
            &self.state.db,
            user,
            after.map(|(t, id)| (t, ScheduleId(id))),
            limit + 1,
        )
        .await
        .map_err(ApiError::internal)?;
        let next = page::next_cursor(&mut rows, limit, |r| {
            self.state.cursors.sign_key(&scope, r.created_at, r.id.0)
        });
        Ok(ScheduleListResponse::Ok(Json(ScheduleList {
            items: rows.into_iter().map(Into::into).collect(),
            next_cursor: next.into(),
        })))
    }

    /// One schedule.
    #[oai(path = "/schedules/:id", method = "get", operation_id = "getSchedule")]
    async fn get(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
    ) -> Result<ScheduleResponse, Errors<{ AUTH | E404 | E422 }>> {
        Ok(ScheduleResponse::Ok(Json(
            self.owned(auth.0.user_id, id.0).await?.into(),
        )))
    }

    /// Change a schedule.
    #[oai(
        path = "/schedules/:id",
        method = "patch",
        operation_id = "updateSchedule"
    )]
    async fn update(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
        body: Json<UpdateSchedule>,
    ) -> Result<ScheduleResponse, Errors<{ AUTH | BODY | E404 }>> {
        let b = body.0;
        let patch = SchedulePatch {
            name: opt(b.name, "name")?,
            rule: opt(b.cron, "cron")?,
            tz: opt(b.time_zone, "time_zone")?,
            window: window_of(opt(b.time_window, "time_window")?)?,
            parameters: opt(b.parameters, "parameters")?,
            enabled: opt(b.enabled, "enabled")?,
            overlap: opt(b.overlap, "overlap")?,
            catch_up: catch_up_of(opt(b.catch_up, "catch_up")?)?,
            pause_after_failures: b.pause_after_failures.get("pause_after_failures")?,
            workflow_version: b.workflow_version.get("workflow_version")?,
        };
        let row = sched::update(&self.state.db, auth.0.user_id, ScheduleId(id.0), patch)
            .await
            .map_err(schedule_error)?;
        Ok(ScheduleResponse::Ok(Json(row.into())))
    }

    /// Delete a schedule; its runs stay (without the link).
    #[oai(
        path = "/schedules/:id",
        method = "delete",
        operation_id = "deleteSchedule"
    )]
    async fn delete(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
    ) -> Result<Deleted, Errors<{ AUTH | E404 | E422 }>> {
        let gone = sched::delete(&self.state.db, auth.0.user_id, ScheduleId(id.0))
            .await
            .map_err(ApiError::internal)?;
        if !gone {
            return Err(ApiError::not_found("schedule").into());
        }
        Ok(Deleted::NoContent)
    }

    /// Pause a schedule: no tick fires until it is resumed.
    #[oai(
        path = "/schedules/:id/pause",
        method = "post",
        operation_id = "pauseSchedule"
    )]
    async fn pause(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
    ) -> Result<ScheduleResponse, Errors<{ AUTH | E404 | E422 }>> {
        let row = sched::pause(&self.state.db, auth.0.user_id, ScheduleId(id.0))
            .await
            .map_err(schedule_error)?;
        Ok(ScheduleResponse::Ok(Json(row.into())))
    }

    /// Resume a schedule: its next tick after now; the failure count starts again at 0.
    #[oai(
        path = "/schedules/:id/resume",
        method = "post",
        operation_id = "resumeSchedule"
    )]
    async fn resume(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
    ) -> Result<ScheduleResponse, Errors<{ AUTH | E404 | E422 }>> {
        let row = sched::resume(&self.state.db, auth.0.user_id, ScheduleId(id.0))
            .await
            .map_err(schedule_error)?;
        Ok(ScheduleResponse::Ok(Json(row.into())))
    }

    /// The next `count` fires (default 10, at most 100) strictly after `from` (RFC 3339;
    /// default now), each with the window it resolves to.
    #[oai(
        path = "/schedules/:id/preview",
        method = "get",
        operation_id = "previewSchedule"
    )]
    async fn preview(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))] count: Query<Option<u32>>,
        from: Query<Option<String>>,
    ) -> Result<PreviewResponse, Errors<{ AUTH | E404 | E422 }>> {
        let row = self.owned(auth.0.user_id, id.0).await?;
        let from = match from.0.as_deref() {
            None => Utc::now(),
            Some(f) => parse_instant(f).map_err(|m| ApiError::field("from", m))?,
        };
        let fires = sched::preview(&row, from, count.0.unwrap_or(10) as usize)
            .into_iter()
            .map(|f| PreviewFireBody {
                at: f.at,
                time_window: TimeWindowBody {
                    start: f.window.start_amc(),
                    end: f.window.end_amc(),
                    time_zone: f.window.time_zone.name().to_string(),
                },
            })
            .collect();
        Ok(PreviewResponse::Ok(Json(PreviewBody { fires })))
    }

    /// Run the schedule once by hand, now or at `at`: it overrides `skip`, leaves
    /// `next_run_at` alone and never takes a tick's place in the history.
    #[oai(
        path = "/schedules/:id/trigger",
        method = "post",
        operation_id = "triggerSchedule"
    )]
    async fn trigger(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
        body: OptionalJson<TriggerBody>,
    ) -> Result<TriggeredResponse, Errors<{ AUTH | BODY | E404 }>> {
        let at = match body.0 {
            Some(b) => opt(b.at, "at")?,
            None => None,
        };
        if let Some(at) = at
            && at > Utc::now() + chrono::Duration::days(366)
        {
            return Err(ApiError::field("at", "must be within a year from now").into());
        }
        let (run, at) = sched::trigger(&self.state.db, auth.0.user_id, ScheduleId(id.0), at)
            .await
            .map_err(|e| match e {
                sched::TriggerError::NotFound => ApiError::not_found("schedule"),
                sched::TriggerError::Render(e) => render_error(e),
                sched::TriggerError::Db(e) => ApiError::internal(e),
            })?;
        // A lost push is covered by the reconciler (the run is queued; a later one is not
        // admitted before its instant).
        let job = SubmitJob::new(run.id, None);
        let pushed = if at > Utc::now() {
            self.state.producer.enqueue_at(&job, at.into()).await
        } else {
            self.state.producer.enqueue(&job).await
        };
        if let Err(e) = pushed {
            tracing::warn!(execution.id = %run.id, error = %e, "could not enqueue a triggered run; the reconciler will pick it up");
        }
        Ok(TriggeredResponse::Accepted(Json(run.into())))
    }

    /// The run history: every tick (started, skipped, buffered, missed, invalid) and
    /// trigger, newest first (`cursor`, `limit` ≤ 500, default 50).
    #[oai(
        path = "/schedules/:id/runs",
        method = "get",
        operation_id = "listScheduleRuns"
    )]
    async fn runs(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
        paging: Params<Page<500>>,
    ) -> Result<RunsResponse, Errors<{ AUTH | E404 | E422 }>> {
        let user = auth.0.user_id;
        let scope = page::scope(id.0.as_bytes(), user.0);
        let after = self.open_cursor(&scope, paging.0.cursor)?;
        let limit = page::limit(paging.0.limit);
        let mut rows = sched::runs(
            &self.state.db,
            user,
            ScheduleId(id.0),
            after.map(|(t, i)| (t, ScheduleRunId(i))),
            limit + 1,
        )
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found("schedule"))?;
        let next = page::next_cursor(&mut rows, limit, |r| {
            self.state.cursors.sign_key(&scope, r.scheduled_for, r.id.0)
        });
        let items = rows
            .into_iter()
            .map(|r| RunEntryBody {
                scheduled_for: r.scheduled_for,
                fired_at: r.fired_at,
                outcome: r.outcome,
                execution_id: r.execution_id.map(|e| e.0).into(),
                status: r.status.into(),
                row_count: r.row_count.into(),
                error: r
                    .error_code
                    .map(|code| RunErrorBody {
                        code,
                        message: r.error_message.into(),
                    })
                    .into(),
                missed_count: r.missed_count,
            })
            .collect();
        Ok(RunsResponse::Ok(Json(RunList {
            items,
            next_cursor: next.into(),
        })))
    }

    /// The schedule's figures: runs, successes, failures, success rate, mean runtime,
    /// last and next tick, ticks missed.
    #[oai(
        path = "/schedules/:id/metrics",
        method = "get",
        operation_id = "getScheduleMetrics"
    )]
    async fn metrics(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
    ) -> Result<MetricsResponse, Errors<{ AUTH | E404 | E422 }>> {
        let m = sched::schedule_metrics(&self.state.db, auth.0.user_id, ScheduleId(id.0))
            .await
            .map_err(ApiError::internal)?
            .ok_or_else(|| ApiError::not_found("schedule"))?;
        Ok(MetricsResponse::Ok(Json(MetricsBody {
            runs: m.runs,
            succeeded: m.succeeded,
            failed: m.failed,
            success_rate: m.success_rate.into(),
            mean_runtime_seconds: m.mean_runtime_seconds.into(),
            last_run_at: m.last_run_at.into(),
            next_run_at: m.next_run_at.into(),
            missed: m.missed,
        })))
    }
}
