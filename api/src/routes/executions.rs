//! Runs of workflows: create (record + enqueue, never waiting for AMC), read with the
//! audit trail, results as JSON pages or streamed CSV, and cancel.

use super::ApiTags;
use crate::auth::BearerAuth;
use crate::error::status::{AUTH, BODY, E404, E409, E410, E422};
use crate::error::{ApiError, Errors};
use crate::input::{In, Int, JsonObject, LocalTime, Nullable, Obj, TimeZone, opt};
use crate::params::{Page, Params};
use crate::state::AppState;
use chrono::{DateTime, Utc};
use common::execution::{
    self, CancelOutcome, Created, ExecutionRow, RunError, RunRequest, TriggeredBy,
};
use common::ids::{ExecutionId, WorkflowId};
use common::jobs::CancelJob;
use common::result_types::{ColumnType, ResultColumns};
use common::sql::RenderError;
use common::time_window::TimeWindow;
use poem::Body;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::{Binary, Json};
use poem_openapi::registry::{
    MetaMediaType, MetaResponse, MetaResponses, MetaSchema, MetaSchemaRef, Registry,
};
use poem_openapi::{ApiResponse, Object, OpenApi};
use std::sync::Arc;
use uuid::Uuid;

/// The AMC time window of a run, as sent: local times read in `time_zone`. Both times
/// lie from 2000-01-01T00:00:00 to 2100-01-01T00:00:00 (years 2000 to 2100), a leap second
/// (`…T23:59:60`) is refused, and each must exist in `time_zone`: a local time its clocks
/// skip (the spring-forward gap, such as 2026-03-08T02:30:00 in America/New_York) is
/// refused. Each refusal is a 422 naming the field.
#[derive(Debug, Object)]
pub struct TimeWindowInput {
    /// `yyyy-MM-ddTHH:mm:ss`, no offset.
    pub start: In<LocalTime>,
    /// `yyyy-MM-ddTHH:mm:ss`, no offset; after `start`.
    pub end: In<LocalTime>,
    /// IANA time zone name (default `UTC`).
    pub time_zone: Option<In<TimeZone>>,
}

impl TimeWindowInput {
    /// The checked window; a bad field is named under `prefix` (`time_window.start`).
    pub fn parse(self) -> Result<TimeWindow, ApiError> {
        let start = self.start.get("time_window.start")?;
        let end = self.end.get("time_window.end")?;
        let zone = opt(self.time_zone, "time_window.time_zone")?.unwrap_or(chrono_tz::UTC);
        TimeWindow::parse(&start, &end, Some(zone.name()))
            .map_err(|e| ApiError::field(e.field, e.message))
    }
}

/// The AMC time window of a run: local times read in `time_zone`.
#[derive(Debug, Clone, Object)]
pub struct TimeWindowBody {
    /// `yyyy-MM-ddTHH:mm:ss`, no offset.
    pub start: String,
    /// `yyyy-MM-ddTHH:mm:ss`, no offset; after `start`.
    pub end: String,
    /// IANA time zone name.
    pub time_zone: String,
}

impl TimeWindowBody {
    /// A checked window as clients see it.
    pub fn of(w: &TimeWindow) -> Self {
        Self {
            start: w.start_amc(),
            end: w.end_amc(),
            time_zone: w.time_zone.name().to_owned(),
        }
    }
}

/// A request to run a workflow.
#[derive(Debug, Object)]
pub struct CreateExecutionBody {
    /// Values of the workflow's `{{placeholders}}`; defaults fill the rest.
    pub parameters: Option<In<JsonObject>>,
    /// Absent: the default window, the 30 days ending 14 days ago in the instance's
    /// zone (the answer's `time_window_defaulted` is then true).
    pub time_window: Option<In<Obj<TimeWindowInput>>>,
    /// The workflow version to run (default: the latest).
    pub version: Option<In<Int<1, 1000000>>>,
}

/// An error recorded on a run, with AMC's or LWA's words verbatim.
#[derive(Debug, Object)]
pub struct ExecutionErrorBody {
    pub code: execution::ErrorCode,
    pub message: Nullable<String>,
}

/// One state change of a run.
#[derive(Debug, Object)]
pub struct TransitionBody {
    pub from_status: Nullable<execution::Status>,
    pub to_status: execution::Status,
    pub reason: Nullable<String>,
    pub at: DateTime<Utc>,
}

/// A run of a workflow.
#[derive(Debug, Object)]
pub struct ExecutionBody {
    pub id: Uuid,
    pub workflow_id: Uuid,
    /// The workflow version it ran (null only for runs made before versions existed).
    pub workflow_version: Nullable<i32>,
    pub instance_id: Uuid,
    pub status: execution::Status,
    pub amc_execution_id: Nullable<String>,
    /// The saved workflow AMC ran it through, for a rendered query over the ad hoc size
    /// limit (`AMP_AMC_ADHOC_MAX_BYTES`); null for a query sent ad hoc.
    pub amc_workflow_id: Nullable<String>,
    pub row_count: Nullable<i64>,
    pub columns: Nullable<Vec<String>>,
    pub error: Nullable<ExecutionErrorBody>,
    pub parameters: serde_json::Value,
    pub sql_query: String,
    pub time_window: TimeWindowBody,
    pub triggered_by: TriggeredBy,
    /// The schedule that fired (or was triggered for) it.
    pub schedule_id: Nullable<Uuid>,
    /// The tick it was fired for (null for a run triggered by hand).
    pub scheduled_for: Nullable<DateTime<Utc>>,
    /// The collection it is a window of.
    pub collection_id: Nullable<Uuid>,
    /// The batch it is one instance's run of.
    pub batch_id: Nullable<Uuid>,
    /// The window of that collection (its `index`) this run is an attempt of: each attempt
    /// of a window is a run of its own.
    pub collection_window: Nullable<i32>,
    /// The run this one retries (`POST /executions/{id}/retry`).
    pub retry_of: Nullable<Uuid>,
    /// Consecutive transient failures of the current step.
    pub attempt: i32,
    pub next_check_at: Nullable<DateTime<Utc>>,
    pub cancel_requested_at: Nullable<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub completed_at: Nullable<DateTime<Utc>>,
    /// When the stored result was removed, past `AMP_RESULTS_RETENTION` (its results then
    /// answer 410).
    pub results_expired_at: Nullable<DateTime<Utc>>,
    /// Why a queued run waits (`GET /executions/{id}` only): `daily_quota`,
    /// `instance_cap`, `account_cap`, `queued_behind_older_runs`, `not_before` (a run
    /// triggered for a later instant, not admitted before `next_check_at`), and for a
    /// collection window `collection_reserve` (windows hold every slot but the instance's
    /// `collection_reserve`) or `collection_paused`.
    pub waiting_reason: Nullable<execution::WaitingReason>,
    /// With `daily_quota`: when the run may start (the next midnight in the instance's zone).
    pub quota_wait_until: Nullable<DateTime<Utc>>,
    /// True when the run was created without a `time_window` and got the default one
    /// (in the answer to its create only).
    #[oai(skip_serializing_if_is_none)]
    pub time_window_defaulted: Option<bool>,
    /// The audit trail (on `GET /executions/{id}` only).
    #[oai(skip_serializing_if_is_none)]
    pub transitions: Option<Vec<TransitionBody>>,
}

impl From<ExecutionRow> for ExecutionBody {
    fn from(r: ExecutionRow) -> Self {
        let columns = r
            .result_columns
            .as_ref()
            .map(|c| ResultColumns::from_json(Some(c)).names);
        Self {
            id: r.id.0,
            workflow_id: r.workflow_id.0,
            workflow_version: r.workflow_version.into(),
            instance_id: r.instance_id.0,
            error: r
                .error_code
                .map(|code| ExecutionErrorBody {
                    code,
                    message: r.error_message.into(),
                })
                .into(),
            time_window: TimeWindowBody {
                start: r
                    .time_window_start
                    .format(common::time_window::AMC_FORMAT)
                    .to_string(),
                end: r
                    .time_window_end
                    .format(common::time_window::AMC_FORMAT)
                    .to_string(),
                time_zone: r.time_zone,
            },
            status: r.status,
            amc_execution_id: r.amc_execution_id.map(|a| a.0).into(),
            amc_workflow_id: r.amc_workflow_id.map(|w| w.0).into(),
            row_count: r.row_count.into(),
            columns: columns.into(),
            parameters: r.parameters,
            sql_query: r.sql_query,
            triggered_by: r.triggered_by,
            schedule_id: r.schedule_id.map(|s| s.0).into(),
            scheduled_for: r.scheduled_for.into(),
            collection_id: r.collection_id.map(|c| c.0).into(),
            batch_id: r.batch_id.map(|b| b.0).into(),
            collection_window: r.collection_window.into(),
            retry_of: r.retry_of.map(|c| c.0).into(),
            attempt: r.attempt,
            next_check_at: r.next_check_at.into(),
            cancel_requested_at: r.cancel_requested_at.into(),
            created_at: r.created_at,
            updated_at: r.updated_at,
            completed_at: r.completed_at.into(),
            results_expired_at: r.results_expired_at.into(),
            waiting_reason: r.waiting_reason.into(),
            quota_wait_until: r.quota_wait_until.into(),
            time_window_defaulted: None,
            transitions: None,
        }
    }
}

/// One page of a run's result rows.
#[derive(Debug, Object)]
pub struct ResultsPage {
    pub columns: Vec<String>,
    /// Each column's type, inferred over the whole result: `integer` (fits 64 bits),
    /// `decimal`, `boolean`, `date` (`YYYY-MM-DD`), `timestamp` (as AMC wrote it) or
    /// `string` (anything else, or a mix; integers mixed with decimals are `decimal`).
    /// Results stored before types existed, and a collection's combined results, list
    /// every column as `string`.
    pub column_types: Vec<ColumnType>,
    /// The rows, one JSON value per column: an empty cell is `null`; an `integer` a JSON
    /// number (exact 64-bit value); a `decimal` a JSON number when its value survives the
    /// round trip through an IEEE-754 double (`0.1`, `12.50` → `12.5`), otherwise the
    /// string as stored (`9007199254740993`, `1e400`); a `boolean` `true`/`false`; dates,
    /// timestamps and strings are strings as stored. Untyped results (see `column_types`)
    /// carry every cell as a string, empty cells as `""`.
    pub rows: Vec<Vec<serde_json::Value>>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Nullable<String>,
}

impl ResultsPage {
    /// A page of untyped rows (combined collection results): every cell a string.
    pub fn untyped(columns: Vec<String>, rows: Vec<Vec<String>>, next: Option<String>) -> Self {
        let untyped = ResultColumns {
            types: None,
            names: columns,
        };
        Self {
            column_types: untyped.public_types(),
            rows: rows.into_iter().map(|r| untyped.row_json(r)).collect(),
            columns: untyped.names,
            next_cursor: next.into(),
        }
    }
}

/// How `GET /executions/{id}/results` answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, poem_openapi::Enum)]
#[oai(rename_all = "lowercase")]
pub enum ResultFormat {
    /// JSON pages (the default).
    Json,
    /// The whole result as CSV, streamed.
    Csv,
}

#[derive(ApiResponse)]
pub enum CreateExecutionResponse {
    /// Recorded and queued (or, for a repeated `Idempotency-Key`, the earlier run).
    #[oai(status = 202)]
    Accepted(Json<ExecutionBody>),
}

#[derive(ApiResponse)]
pub enum ExecutionResponse {
    /// The run.
    #[oai(status = 200)]
    Ok(Json<ExecutionBody>),
}

/// A page of rows as JSON, or the whole result as CSV: both are the 200 answer, told apart
/// by their content type (a derived `ApiResponse` would list only one of them).
pub enum ResultsResponse {
    Page(Json<ResultsPage>),
    Csv(Binary<Body>),
}

impl poem::IntoResponse for ResultsResponse {
    fn into_response(self) -> poem::Response {
        match self {
            ResultsResponse::Page(p) => p.into_response(),
            ResultsResponse::Csv(b) => b
                .with_content_type("text/csv; charset=utf-8")
                .into_response(),
        }
    }
}

impl ApiResponse for ResultsResponse {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: vec![MetaResponse {
                description: "A page of rows (JSON), or with `format=csv` the whole result as CSV, streamed",
                status: Some(200),
                status_range: None,
                content: vec![
                    MetaMediaType {
                        content_type: "application/json; charset=utf-8",
                        schema: <ResultsPage as poem_openapi::types::Type>::schema_ref(),
                    },
                    MetaMediaType {
                        content_type: "text/csv",
                        schema: MetaSchemaRef::Inline(Box::new(MetaSchema::new_with_format(
                            "string", "binary",
                        ))),
                    },
                ],
                headers: vec![],
            }],
        }
    }

    fn register(registry: &mut Registry) {
        <ResultsPage as poem_openapi::types::Type>::register(registry);
    }
}

/// Execution endpoints.
pub struct ExecutionsApi {
    pub state: Arc<AppState>,
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

#[OpenApi(tag = "ApiTags::Executions")]
impl ExecutionsApi {
    /// Run a workflow: validates and renders its parameters, records the run `queued`
    /// and enqueues it. Answers at once; poll `GET /executions/{id}` or use webhooks.
    #[oai(
        path = "/workflows/:id/executions",
        method = "post",
        operation_id = "createExecution"
    )]
    async fn create(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
        body: Json<CreateExecutionBody>,
        #[oai(name = "Idempotency-Key")] idempotency_key: Header<Option<String>>,
    ) -> Result<CreateExecutionResponse, Errors<{ AUTH | BODY | E404 }>> {
        let user = auth.0.user_id;
        let b = body.0;
        let parameters = opt(b.parameters, "parameters")?.unwrap_or_default();
        let workflow_id = WorkflowId(id.0);
        let (window, defaulted) = match opt(b.time_window, "time_window")? {
            Some(w) => (w.parse()?, false),
            None => {
                let tz = common::workflow::instance_zone(&self.state.db, user, workflow_id)
                    .await
                    .map_err(|e| super::accounts::not_found(e, "workflow"))?;
                (common::workflow::default_window(Utc::now(), tz), true)
            }
        };
        let version = opt(b.version, "version")?;
        let idempotency_key = match idempotency_key.0.map(|k| k.trim().to_string()) {
            Some(k) if k.is_empty() || k.len() > 255 => {
                return Err(
                    ApiError::field("Idempotency-Key", "must be 1 to 255 characters").into(),
                );
            }
            key => key,
        };
        let request = RunRequest {
            user_id: user,
            workflow_id,
            version,
            parameters,
            window,
            triggered_by: TriggeredBy::Api,
            idempotency_key,
            trace: common::telemetry::trace::outgoing(),
        };
        let created = self.state.creates.run(request).await.map_err(|e| match e {
            RunError::WorkflowNotFound => ApiError::not_found("workflow"),
            e @ RunError::VersionNotFound(_) => ApiError::field("version", e.to_string()),
            RunError::Render(e) => render_error(e),
            RunError::Create(e @ execution::CreateError::IdempotencyMismatch) => {
                ApiError::field("Idempotency-Key", e.to_string())
            }
            RunError::Create(execution::CreateError::Db(e)) => ApiError::internal(e),
            e @ (RunError::Batch(_) | RunError::Stopped) => ApiError::internal(e),
        })?;
        let row = match created {
            Created::New(r) | Created::Existing(r) => r,
        };
        let mut body: ExecutionBody = row.into();
        body.time_window_defaulted = Some(defaulted);
        Ok(CreateExecutionResponse::Accepted(Json(body)))
    }

    /// One run, with its audit trail.
    #[oai(
        path = "/executions/:id",
        method = "get",
        operation_id = "getExecution"
    )]
    async fn get(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
    ) -> Result<ExecutionResponse, Errors<{ AUTH | E404 | E422 }>> {
        let detail = execution::detail(&self.state.db, auth.0.user_id, ExecutionId(id.0))
            .await
            .map_err(ApiError::internal)?
            .ok_or_else(|| ApiError::not_found("execution"))?;
        let mut body = ExecutionBody::from(detail.row);
        body.transitions = Some(
            detail
                .transitions
                .into_iter()
                .map(|t| TransitionBody {
                    from_status: t.from_status.into(),
                    to_status: t.to_status,
                    reason: t.reason.into(),
                    at: t.created_at,
                })
                .collect(),
        );
        Ok(ExecutionResponse::Ok(Json(body)))
    }

    /// The result of a succeeded run: JSON pages (`cursor`, `limit` ≤ 10,000, default
    /// 1,000), or `?format=csv` for the whole result as streamed CSV. A cursor is
    /// opaque: one this endpoint did not return for this run → 422. The CSV is the bytes
    /// AMC produced (several parts joined, their repeated headers dropped). Results
    /// removed past `AMP_RESULTS_RETENTION` → 410.
    #[oai(
        path = "/executions/:id/results",
        method = "get",
        operation_id = "getExecutionResults"
    )]
    async fn results(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
        paging: Params<Page<10000>>,
        format: Query<Option<ResultFormat>>,
    ) -> Result<ResultsResponse, Errors<{ AUTH | E404 | E409 | E410 | E422 }>> {
        let row = execution::find_for_user(&self.state.db, auth.0.user_id, ExecutionId(id.0))
            .await
            .map_err(ApiError::internal)?
            .ok_or_else(|| ApiError::not_found("execution"))?;
        if let Some(at) = row.results_expired_at {
            return Err(ApiError::gone(format!(
                "the results expired at {}, past the retention of stored results",
                at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ))
            .into());
        }
        let columns = ResultColumns::from_json(row.result_columns.as_ref());
        let Some(location) = row
            .result_location
            .filter(|_| row.status == execution::Status::Succeeded)
        else {
            return Err(ApiError::conflict(format!(
                "the execution is {}; results exist once it has succeeded",
                row.status
            ))
            .into());
        };
        let store = &self.state.results;
        // Retention removes the object before its row says so (within one transaction).
        let gone = |e: common::results::ResultsError| {
            if e.is_not_found() {
                ApiError::gone("the results expired, past the retention of stored results")
            } else {
                ApiError::internal(e)
            }
        };
        if format.0 == Some(ResultFormat::Csv) {
            let chunks = store.open(&location).await.map_err(gone)?;
            return Ok(ResultsResponse::Csv(Binary(Body::from_bytes_stream(
                chunks,
            ))));
        }
        let limit = paging.0.limit.unwrap_or(1_000);
        let scope = row.id.0.as_bytes();
        let cursor = match paging.0.cursor.as_deref().filter(|c| !c.is_empty()) {
            None => None,
            Some(c) => Some(
                self.state
                    .cursors
                    .open_offset(scope, c)
                    .ok_or_else(crate::page::bad_cursor)?,
            ),
        };
        let page = store
            .page(&location, cursor, limit as usize)
            .await
            .map_err(|e| match e {
                common::results::ResultsError::BadCursor => crate::page::bad_cursor(),
                other => gone(other),
            })?;
        let next = page
            .next_cursor
            .map(|c| self.state.cursors.sign_offset(scope, c));
        Ok(ResultsResponse::Page(Json(ResultsPage {
            column_types: columns.public_types(),
            columns: page.columns,
            rows: page.rows.into_iter().map(|r| columns.row_json(r)).collect(),
            next_cursor: next.into(),
        })))
    }

    /// Cancel a run: a queued run ends `cancelled` at once; a run at AMC keeps its status
    /// with `cancel_requested_at` set until AMC confirms; an ended run → 409.
    #[oai(
        path = "/executions/:id/cancel",
        method = "post",
        operation_id = "cancelExecution"
    )]
    async fn cancel(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
    ) -> Result<ExecutionResponse, Errors<{ AUTH | E404 | E409 | E422 }>> {
        let outcome = execution::request_cancel(&self.state.db, auth.0.user_id, ExecutionId(id.0))
            .await
            .map_err(ApiError::internal)?;
        let row = match outcome {
            CancelOutcome::NotFound => return Err(ApiError::not_found("execution").into()),
            CancelOutcome::Terminal(r) => {
                return Err(ApiError::conflict(format!(
                    "the execution has already ended ({})",
                    r.status
                ))
                .into());
            }
            CancelOutcome::Cancelled(r) => r,
            CancelOutcome::Requested(r) => {
                self.state
                    .producer
                    .enqueue(&CancelJob::new(r.id, None))
                    .await
                    .map_err(ApiError::internal)?;
                r
            }
        };
        Ok(ExecutionResponse::Ok(Json(row.into())))
    }
}
