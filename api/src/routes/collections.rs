//! `/collections`: backfills that run one workflow over every window of a historical range
//! (CONTRACT § Collections), their windows, pause, resume, cancel, retry-failed and
//! combined results; and `POST /schedules/{id}/backfill`. The handlers record and read;
//! windows advance inside the transactions that end their runs.

use super::ApiTags;
use super::executions::{ResultFormat, ResultsPage, ResultsResponse};
use super::schedules::render_error;
use crate::auth::BearerAuth;
use crate::error::status::{AUTH, BODY, E404, E409, E410, E422};
use crate::error::{ApiError, Errors};
use crate::input::{Choice, Date, Id, In, Int, JsonObject, Name, Nullable, TimeZone, opt};
use crate::page;
use crate::params::{Page, Params};
use crate::state::AppState;
use chrono::{DateTime, NaiveDate, Utc};
use common::collection::{
    self as coll, BackfillSpec, Changed, CollectionError, CollectionRow, CollectionSpec,
    CollectionStatus, CombinedError, Counts, Created, Granularity, Limits, ShownStatus,
    WindowGranularity, WindowRow,
};
use common::ids::{CollectionId, ExecutionId, InstanceId, ScheduleId, WorkflowId};
use common::jobs::{AdmitJob, CancelJob};
use common::schedule::WeekStart;
use common::time_window::AMC_FORMAT;
use poem::Body;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::{Binary, Json};
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde_json::Value;
use std::sync::Arc;
use uuid::Uuid;

/// A new collection. Every field but `workflow_id` is optional: by default the 52 weeks
/// (30 days, 12 months) ending at least 14 days ago, weekly, two windows at once.
#[derive(Debug, Object)]
pub struct CreateCollection {
    pub workflow_id: In<Id>,
    pub name: Option<In<Name<200>>>,
    /// The first window's first day (a `week_starts` day for weeks, a 1st for months).
    pub start: Option<In<Date>>,
    /// The day after the last window (exclusive); not after today.
    pub end: Option<In<Date>>,
    /// `week` (default), `day` or `month`.
    pub granularity: Option<In<Choice<WindowGranularity>>>,
    /// The first day of a week (default `monday`).
    pub week_starts: Option<In<Choice<WeekStart>>>,
    /// IANA zone the windows are read in (default `UTC`).
    pub time_zone: Option<In<TimeZone>>,
    /// Values of the workflow's placeholders; they override its defaults.
    /// `{{window_start}}` and `{{window_end}}` take each window's dates.
    pub parameters: Option<In<JsonObject>>,
    /// Windows running at once (default 2).
    pub max_concurrency: Option<In<Int<1, 100>>>,
    /// Attempts per window before it fails (default 3).
    pub max_attempts: Option<In<Int<1, 20>>>,
}

/// A backfill of a schedule: its fires in the range, each window resolved as the fire
/// would have been.
#[derive(Debug, Object)]
pub struct BackfillBody {
    /// The first day (in the schedule's zone) whose fires are included.
    pub start: In<Date>,
    /// The day after the last (exclusive); not after today.
    pub end: In<Date>,
    /// Windows running at once (default 2).
    pub max_concurrency: Option<In<Int<1, 100>>>,
    /// Attempts per window before it fails (default 3).
    pub max_attempts: Option<In<Int<1, 20>>>,
}

/// How many windows stand where.
#[derive(Debug, Object)]
pub struct CountsBody {
    /// Not started, waiting for a retry, or waiting for a slot.
    pub queued: i64,
    pub running: i64,
    pub succeeded: i64,
    pub failed: i64,
    pub cancelled: i64,
}

impl From<Counts> for CountsBody {
    fn from(c: Counts) -> Self {
        Self {
            queued: c.queued,
            running: c.running,
            succeeded: c.succeeded,
            failed: c.failed,
            cancelled: c.cancelled,
        }
    }
}

/// A collection.
#[derive(Debug, Object)]
pub struct CollectionBody {
    pub id: Uuid,
    pub workflow_id: Uuid,
    /// The workflow version it pinned when it started (every window runs it).
    pub workflow_version: Nullable<i32>,
    pub instance_id: Uuid,
    /// The schedule of a backfill.
    pub schedule_id: Nullable<Uuid>,
    pub name: String,
    pub start: NaiveDate,
    /// Exclusive.
    pub end: NaiveDate,
    /// `week`, `day`, `month`, or `schedule` (a backfill).
    pub granularity: Granularity,
    pub week_starts: WeekStart,
    pub time_zone: String,
    /// The values it runs with (the workflow's defaults and the collection's).
    pub parameters: Value,
    pub max_concurrency: i32,
    pub max_attempts: i32,
    pub status: CollectionStatus,
    /// Windows in all.
    pub total: i32,
    pub counts: CountsBody,
    /// From the observed runtimes; null before a window has succeeded and once ended.
    pub estimated_completion_at: Nullable<DateTime<Utc>>,
    /// The failed windows (their last error and attempts), oldest first: the first 100;
    /// `counts.failed` says how many there are (`GET …/windows?status=failed` lists all).
    pub failed_windows: Vec<WindowBody>,
    /// Why it has its status when neither its windows nor its owner decided it (a
    /// collection closed by a migration); null otherwise.
    pub status_reason: Nullable<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When every window had ended.
    pub completed_at: Nullable<DateTime<Utc>>,
}

impl From<CollectionRow> for CollectionBody {
    fn from(c: CollectionRow) -> Self {
        let eta = c.estimated_completion_at(Utc::now());
        Self {
            id: c.id.0,
            workflow_id: c.workflow_id.0,
            workflow_version: c.workflow_version.into(),
            instance_id: c.instance_id.0,
            schedule_id: c.schedule_id.map(|s| s.0).into(),
            name: c.name,
            start: c.start_date,
            end: c.end_date,
            granularity: c.granularity,
            week_starts: c.week_starts,
            time_zone: c.time_zone,
            parameters: c.parameters,
            max_concurrency: c.max_concurrency,
            max_attempts: c.max_attempts,
            status: c.status,
            total: c.window_count,
            counts: c.counts.into(),
            estimated_completion_at: eta.into(),
            failed_windows: c.failed_windows.0.into_iter().map(Into::into).collect(),
            status_reason: c.status_reason.into(),
            created_at: c.created_at,
            updated_at: c.updated_at,
            completed_at: c.completed_at.into(),
        }
    }
}

/// A page of the user's collections, newest first.
#[derive(Debug, Object)]
pub struct CollectionList {
    pub items: Vec<CollectionBody>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Nullable<String>,
}

/// A window's dates.
#[derive(Debug, Object)]
pub struct WindowDates {
    /// Local start (`yyyy-MM-ddTHH:mm:ss`) in the collection's zone.
    pub start: String,
    /// Local end, exclusive.
    pub end: String,
}

/// What a collection would run (a dry run).
#[derive(Debug, Object)]
pub struct DryRunBody {
    pub windows: Vec<WindowDates>,
}

/// A window's last error.
#[derive(Debug, Object)]
pub struct WindowErrorBody {
    pub code: String,
    pub message: Nullable<String>,
}

/// One window.
#[derive(Debug, Object)]
pub struct WindowBody {
    /// Its place, oldest first from 0.
    pub index: i32,
    pub start: String,
    pub end: String,
    pub status: ShownStatus,
    /// Runs made for it so far.
    pub attempts: i32,
    /// Its current (or last) run.
    pub execution_id: Nullable<Uuid>,
    /// Every run made for it, oldest first: one per attempt (`retry-failed` starts
    /// `attempts` again, not this list).
    pub execution_ids: Vec<Uuid>,
    pub error: Nullable<WindowErrorBody>,
}

impl From<WindowRow> for WindowBody {
    fn from(w: WindowRow) -> Self {
        let status = w.shown_status();
        Self {
            index: w.position,
            start: w.window_start.format(AMC_FORMAT).to_string(),
            end: w.window_end.format(AMC_FORMAT).to_string(),
            status,
            attempts: w.attempts,
            execution_id: w.execution_id.map(|e| e.0).into(),
            execution_ids: w.execution_ids.iter().map(|e| e.0).collect(),
            error: w
                .error_code
                .map(|code| WindowErrorBody {
                    code,
                    message: w.error_message.into(),
                })
                .into(),
        }
    }
}

/// A page of windows, oldest first.
#[derive(Debug, Object)]
pub struct WindowList {
    pub items: Vec<WindowBody>,
    pub next_cursor: Nullable<String>,
}

#[derive(ApiResponse)]
pub enum CreateCollectionResponse {
    /// The collection was created, with its windows and first runs.
    #[oai(status = 201)]
    Created(Json<Box<CollectionBody>>),
    /// A dry run: the windows it would run; nothing was created.
    #[oai(status = 200)]
    DryRun(Json<DryRunBody>),
}

#[derive(ApiResponse)]
pub enum CreatedCollection {
    /// The collection was created, with its windows and first runs.
    #[oai(status = 201)]
    Created(Json<CollectionBody>),
}

#[derive(ApiResponse)]
pub enum CollectionResponse {
    /// The collection.
    #[oai(status = 200)]
    Ok(Json<CollectionBody>),
}

#[derive(ApiResponse)]
pub enum CollectionListResponse {
    /// The user's collections, newest first.
    #[oai(status = 200)]
    Ok(Json<CollectionList>),
}

#[derive(ApiResponse)]
pub enum WindowListResponse {
    /// The windows, oldest first.
    #[oai(status = 200)]
    Ok(Json<WindowList>),
}

/// Collection endpoints.
pub struct CollectionsApi {
    pub state: Arc<AppState>,
}

fn collection_error(e: CollectionError) -> ApiError {
    match e {
        CollectionError::WorkflowNotFound => ApiError::not_found("workflow"),
        CollectionError::ScheduleNotFound => ApiError::not_found("schedule"),
        CollectionError::NotFound => ApiError::not_found("collection"),
        CollectionError::Range(r) => ApiError::field(r.field, r.message),
        CollectionError::Render(e) => render_error(e),
        CollectionError::Conflict(m) => ApiError::conflict(m),
        CollectionError::Db(e) => ApiError::internal(e),
    }
}

impl CollectionsApi {
    fn limits(&self) -> Limits {
        Limits {
            max_windows: self.state.config.collection_max_windows,
            max_lookback_days: self.state.config.collection_max_lookback.as_secs() / 86_400,
        }
    }

    /// Pushes what a change needs after its commit: an admission for the runs it started
    /// (they are queued; the reconciler covers a lost push) and the cancellations at AMC.
    async fn after_commit(
        &self,
        instance: InstanceId,
        started: &[ExecutionId],
        cancels: &[ExecutionId],
    ) -> Result<(), ApiError> {
        let p = &self.state.producer;
        if !started.is_empty() {
            p.enqueue(&AdmitJob {
                instance_id: instance,
            })
            .await
            .map_err(ApiError::internal)?;
        }
        if !cancels.is_empty() {
            let jobs: Vec<CancelJob> = cancels.iter().map(|id| CancelJob::new(*id, None)).collect();
            p.enqueue_batch(&jobs).await.map_err(ApiError::internal)?;
        }
        Ok(())
    }

    async fn changed(
        &self,
        c: Result<Changed, CollectionError>,
    ) -> Result<CollectionResponse, ApiError> {
        let c = c.map_err(collection_error)?;
        self.after_commit(c.collection.instance_id, &c.started, &c.cancel_requested)
            .await?;
        Ok(CollectionResponse::Ok(Json(c.collection.into())))
    }

    async fn created(&self, c: Created) -> Result<CollectionBody, ApiError> {
        self.after_commit(c.collection.instance_id, &c.started, &[])
            .await?;
        Ok(c.collection.into())
    }
}

#[OpenApi(tag = "ApiTags::Collections")]
impl CollectionsApi {
    /// Create a collection: one run of the workflow per window of the range, oldest
    /// first, `max_concurrency` at once. With `dry_run=true`, answers the windows it would
    /// run and creates nothing. A bad range → 422 naming `start` or `end`.
    #[oai(
        path = "/collections",
        method = "post",
        operation_id = "createCollection"
    )]
    async fn create(
        &self,
        auth: BearerAuth,
        dry_run: Query<Option<bool>>,
        body: Json<CreateCollection>,
    ) -> Result<CreateCollectionResponse, Errors<{ AUTH | BODY | E404 }>> {
        let user = auth.0.user_id;
        let b = body.0;
        let start = opt(b.start, "start")?;
        let end = opt(b.end, "end")?;
        let range = match (start, end) {
            (Some(s), Some(e)) => Some((s, e)),
            (None, None) => None,
            (Some(_), None) => return Err(ApiError::field("end", "is required with start").into()),
            (None, Some(_)) => return Err(ApiError::field("start", "is required with end").into()),
        };
        let spec = CollectionSpec {
            workflow_id: WorkflowId(b.workflow_id.get("workflow_id")?),
            name: opt(b.name, "name")?,
            range,
            granularity: opt(b.granularity, "granularity")?
                .map(Granularity::from)
                .unwrap_or(Granularity::Week),
            week_starts: opt(b.week_starts, "week_starts")?.unwrap_or(WeekStart::Monday),
            tz: opt(b.time_zone, "time_zone")?.unwrap_or(chrono_tz::UTC),
            parameters: opt(b.parameters, "parameters")?.unwrap_or_default(),
            max_concurrency: opt(b.max_concurrency, "max_concurrency")?.unwrap_or(2),
            max_attempts: opt(b.max_attempts, "max_attempts")?.unwrap_or(3),
        };
        if dry_run.0 == Some(true) {
            coll::store::check_workflow(&self.state.db, user, spec.workflow_id)
                .await
                .map_err(collection_error)?;
            let windows = coll::plan(&spec, self.limits())
                .map_err(|r| ApiError::field(r.field, r.message))?;
            let windows = windows
                .into_iter()
                .map(|d| {
                    let w = coll::store::time_window_of(d, spec.tz);
                    WindowDates {
                        start: w.start_amc(),
                        end: w.end_amc(),
                    }
                })
                .collect();
            return Ok(CreateCollectionResponse::DryRun(Json(DryRunBody {
                windows,
            })));
        }
        let created = coll::create(&self.state.db, user, &spec, self.limits())
            .await
            .map_err(collection_error)?;
        Ok(CreateCollectionResponse::Created(Json(Box::new(
            self.created(created).await?,
        ))))
    }

    /// The user's collections, newest first (`cursor`, `limit` ≤ 500, default 50).
    #[oai(
        path = "/collections",
        method = "get",
        operation_id = "listCollections"
    )]
    async fn list(
        &self,
        auth: BearerAuth,
        paging: Params<Page<500>>,
    ) -> Result<CollectionListResponse, Errors<{ AUTH | E422 }>> {
        let user = auth.0.user_id;
        let scope = page::scope(b"collections", user.0);
        let after = page::open_key(&self.state.cursors, &scope, paging.0.cursor)?;
        let limit = page::limit(paging.0.limit);
        let mut rows = coll::list(
            &self.state.db,
            user,
            after.map(|(t, id)| (t, CollectionId(id))),
            limit + 1,
        )
        .await
        .map_err(ApiError::internal)?;
        let next = page::next_cursor(&mut rows, limit, |r| {
            self.state.cursors.sign_key(&scope, r.created_at, r.id.0)
        });
        Ok(CollectionListResponse::Ok(Json(CollectionList {
            items: rows.into_iter().map(Into::into).collect(),
            next_cursor: next.into(),
        })))
    }

    /// One collection, with its progress counts and estimated completion.
    #[oai(
        path = "/collections/:id",
        method = "get",
        operation_id = "getCollection"
    )]
    async fn get(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
    ) -> Result<CollectionResponse, Errors<{ AUTH | E404 | E422 }>> {
        let row = coll::get(&self.state.db, auth.0.user_id, CollectionId(id.0))
            .await
            .map_err(ApiError::internal)?
            .ok_or_else(|| ApiError::not_found("collection"))?;
        Ok(CollectionResponse::Ok(Json(row.into())))
    }

    /// A collection's windows, oldest first (`cursor`, `limit` ≤ 500, default 50), only
    /// those showing `status` when given.
    #[oai(
        path = "/collections/:id/windows",
        method = "get",
        operation_id = "listCollectionWindows"
    )]
    async fn windows(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
        paging: Params<Page<500>>,
        status: Query<Option<ShownStatus>>,
    ) -> Result<WindowListResponse, Errors<{ AUTH | E404 | E422 }>> {
        let scope = id.0.as_bytes().to_vec();
        let after = match paging.0.cursor.as_deref().filter(|c| !c.is_empty()) {
            None => None,
            Some(c) => Some(
                self.state
                    .cursors
                    .open_offset(&scope, c)
                    .and_then(|p| i32::try_from(p).ok())
                    .ok_or_else(page::bad_cursor)?,
            ),
        };
        let limit = page::limit(paging.0.limit);
        let mut rows = coll::window_page(
            &self.state.db,
            auth.0.user_id,
            CollectionId(id.0),
            coll::WindowQuery {
                after,
                limit: limit + 1,
                status: status.0,
            },
        )
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found("collection"))?;
        let next = page::next_cursor(&mut rows, limit, |w| {
            self.state.cursors.sign_offset(&scope, w.position as u64)
        });
        Ok(WindowListResponse::Ok(Json(WindowList {
            items: rows.into_iter().map(Into::into).collect(),
            next_cursor: next.into(),
        })))
    }

    /// Pause: no new window starts; running ones finish.
    #[oai(
        path = "/collections/:id/pause",
        method = "post",
        operation_id = "pauseCollection"
    )]
    async fn pause(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
    ) -> Result<CollectionResponse, Errors<{ AUTH | E404 | E409 | E422 }>> {
        let c = coll::pause(&self.state.db, auth.0.user_id, CollectionId(id.0)).await;
        Ok(self.changed(c).await?)
    }

    /// Resume a paused collection.
    #[oai(
        path = "/collections/:id/resume",
        method = "post",
        operation_id = "resumeCollection"
    )]
    async fn resume(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
    ) -> Result<CollectionResponse, Errors<{ AUTH | E404 | E409 | E422 }>> {
        let c = coll::resume(&self.state.db, auth.0.user_id, CollectionId(id.0)).await;
        Ok(self.changed(c).await?)
    }

    /// Cancel: no window starts again, windows not started are cancelled, runs still
    /// going are cancelled (at AMC too); the collection ends `cancelled`.
    #[oai(
        path = "/collections/:id/cancel",
        method = "post",
        operation_id = "cancelCollection"
    )]
    async fn cancel(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
    ) -> Result<CollectionResponse, Errors<{ AUTH | E404 | E409 | E422 }>> {
        let c = coll::cancel(&self.state.db, auth.0.user_id, CollectionId(id.0)).await;
        Ok(self.changed(c).await?)
    }

    /// Run the failed and cancelled windows again (never a queued or running one), with
    /// a fresh budget of attempts; 409 when there is none.
    #[oai(
        path = "/collections/:id/retry-failed",
        method = "post",
        operation_id = "retryFailedCollectionWindows"
    )]
    async fn retry_failed(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
    ) -> Result<CollectionResponse, Errors<{ AUTH | E404 | E409 | E422 }>> {
        let c = coll::retry_failed(&self.state.db, auth.0.user_id, CollectionId(id.0)).await;
        Ok(self.changed(c).await?)
    }

    /// Every succeeded window's rows with a leading `window_start` column
    /// (`collection_window_start` when the query has its own): JSON pages (`cursor`,
    /// `limit` ≤ 10,000, default 1,000), or `?format=csv` streamed. When a window's
    /// results were removed past `AMP_RESULTS_RETENTION` → 410.
    #[oai(
        path = "/collections/:id/results",
        method = "get",
        operation_id = "getCollectionResults"
    )]
    async fn results(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
        paging: Params<Page<10000>>,
        format: Query<Option<ResultFormat>>,
    ) -> Result<ResultsResponse, Errors<{ AUTH | E404 | E410 | E422 }>> {
        let (user, cid) = (auth.0.user_id, CollectionId(id.0));
        let (db, store) = (&self.state.db, &self.state.results);
        let combined_error = |e: CombinedError| match e {
            CombinedError::NotFound => ApiError::not_found("collection"),
            CombinedError::BadCursor => page::bad_cursor(),
            e @ CombinedError::Expired(_) => ApiError::gone(e.to_string()),
            other => ApiError::internal(other),
        };
        if format.0 == Some(ResultFormat::Csv) {
            let chunks = coll::combined_csv(db, store, user, cid)
                .await
                .map_err(combined_error)?;
            return Ok(ResultsResponse::Csv(Binary(Body::from_bytes_stream(
                chunks,
            ))));
        }
        let scope = id.0.as_bytes();
        let cursor = match paging.0.cursor.as_deref().filter(|c| !c.is_empty()) {
            None => None,
            Some(c) => {
                let raw = self
                    .state
                    .cursors
                    .open(scope, c)
                    .ok_or_else(page::bad_cursor)?;
                Some(decode_position(&raw).ok_or_else(page::bad_cursor)?)
            }
        };
        let page = coll::combined_page(
            db,
            store,
            user,
            cid,
            coll::PageAt {
                cursor,
                limit: paging.0.limit.unwrap_or(1_000) as usize,
            },
        )
        .await
        .map_err(combined_error)?;
        let next = page
            .next
            .map(|p| self.state.cursors.sign(scope, &encode_position(p)));
        Ok(ResultsResponse::Page(Json(ResultsPage::untyped(
            page.columns,
            page.rows,
            next,
        ))))
    }

    /// Backfill a schedule: a collection whose windows are the schedule's fires in the
    /// range (dates in its zone), each resolved as the fire would have been. Overlapping
    /// windows (a window longer than the rule's period) → 422: AMC refuses them.
    #[oai(
        path = "/schedules/:id/backfill",
        method = "post",
        operation_id = "backfillSchedule"
    )]
    async fn backfill(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
        body: Json<BackfillBody>,
    ) -> Result<CreatedCollection, Errors<{ AUTH | BODY | E404 }>> {
        let b = body.0;
        let spec = BackfillSpec {
            schedule_id: ScheduleId(id.0),
            range: (b.start.get("start")?, b.end.get("end")?),
            max_concurrency: opt(b.max_concurrency, "max_concurrency")?.unwrap_or(2),
            max_attempts: opt(b.max_attempts, "max_attempts")?.unwrap_or(3),
        };
        let created = coll::backfill(&self.state.db, auth.0.user_id, &spec, self.limits())
            .await
            .map_err(collection_error)?;
        Ok(CreatedCollection::Created(Json(
            self.created(created).await?,
        )))
    }
}

/// A combined-results position as cursor bytes: the window's position, then the offset.
fn encode_position((window, offset): (i32, u64)) -> Vec<u8> {
    let mut out = window.to_be_bytes().to_vec();
    out.extend_from_slice(&offset.to_be_bytes());
    out
}

fn decode_position(raw: &[u8]) -> Option<(i32, u64)> {
    if raw.len() != 12 {
        return None;
    }
    let window = i32::from_be_bytes(raw[..4].try_into().ok()?);
    let offset = u64::from_be_bytes(raw[4..].try_into().ok()?);
    Some((window, offset))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_round_trip() {
        for p in [(0, 0), (51, 123_456), (i32::MAX, u64::MAX)] {
            assert_eq!(decode_position(&encode_position(p)), Some(p));
        }
        assert_eq!(decode_position(&[0; 11]), None);
    }
}
