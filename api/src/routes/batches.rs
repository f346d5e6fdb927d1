//! `/batches`: one workflow's SQL over up to 100 of the user's instances, with parameters
//! per instance. Each instance's run is a normal execution (`triggered_by: batch`), listed
//! by `GET /executions?batch_id=`. The handlers record and read; a batch ends in the
//! transaction that ends its last run.

use super::ApiTags;
use super::collections::CountsBody;
use super::executions::{TimeWindowBody, TimeWindowInput};
use crate::auth::BearerAuth;
use crate::error::status::{AUTH, BODY, E404, E409, E422};
use crate::error::{ApiError, Errors};
use crate::input::{Id, In, Int, JsonObject, Name, Nullable, Obj, ObjList, item, opt};
use crate::page;
use crate::params::{Page, Params};
use crate::state::AppState;
use chrono::{DateTime, Utc};
use common::batch::{self, BatchError, BatchInstance, BatchRow, BatchSpec, BatchStatus};
use common::ids::{BatchId, ExecutionId, InstanceId, WorkflowId};
use common::jobs::{CancelJob, SubmitJob};
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use std::sync::Arc;
use uuid::Uuid;

/// One instance of a batch, with the values of its own run.
#[derive(Debug, Object)]
pub struct BatchInstanceInput {
    /// One of the user's instances (each at most once per batch).
    pub instance_id: In<Id>,
    /// Values of the workflow's placeholders for this instance's run; they override the
    /// batch's `parameters` and the workflow's defaults.
    pub parameters: Option<In<JsonObject>>,
}

/// A new batch.
#[derive(Debug, Object)]
pub struct CreateBatch {
    /// One of the user's workflows: its SQL runs on every instance listed.
    pub workflow_id: In<Id>,
    /// Default: the workflow's name and the number of instances.
    pub name: Option<In<Name<200>>>,
    /// 1 to 100 of the user's instances, none twice.
    pub instances: In<ObjList<BatchInstanceInput, 100>>,
    /// Values common to every run; they override the workflow's defaults.
    pub parameters: Option<In<JsonObject>>,
    /// The window every run covers. Absent: each run gets the default window, the 30 days
    /// ending 14 days ago in its own instance's zone.
    pub time_window: Option<In<Obj<TimeWindowInput>>>,
    /// The workflow version to run (default: the latest).
    pub version: Option<In<Int<1, 1000000>>>,
}

/// A batch, with its progress.
#[derive(Debug, Object)]
pub struct BatchBody {
    pub id: Uuid,
    pub workflow_id: Uuid,
    /// The workflow version every run runs.
    pub workflow_version: i32,
    pub name: String,
    /// The values common to every run (each run shows the values it ran with).
    pub parameters: serde_json::Value,
    /// The window every run covers; null: each run got the default window of its
    /// instance's zone.
    pub time_window: Nullable<TimeWindowBody>,
    /// `running` until every run has ended; then `succeeded` (every run succeeded),
    /// `failed` (some run failed or was cancelled on its own) or `cancelled` (the batch
    /// was; it has ended once `completed_at` is set).
    pub status: BatchStatus,
    /// Runs in all, one per instance.
    pub total: i32,
    /// The runs by status: `queued` waits for a slot, `running` is at AMC or fetching.
    pub counts: CountsBody,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When its last run ended (`batch.completed` is sent then).
    pub completed_at: Nullable<DateTime<Utc>>,
}

impl From<BatchRow> for BatchBody {
    fn from(b: BatchRow) -> Self {
        let time_window = b.time_window().map(|w| TimeWindowBody::of(&w));
        Self {
            id: b.id.0,
            workflow_id: b.workflow_id.0,
            workflow_version: b.workflow_version,
            name: b.name,
            parameters: b.parameters,
            time_window: time_window.into(),
            status: b.status,
            total: b.run_count,
            counts: b.counts.into(),
            created_at: b.created_at,
            updated_at: b.updated_at,
            completed_at: b.completed_at.into(),
        }
    }
}

/// A page of the user's batches, newest first.
#[derive(Debug, Object)]
pub struct BatchList {
    pub items: Vec<BatchBody>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Nullable<String>,
}

#[derive(ApiResponse)]
pub enum CreatedBatch {
    /// The batch was created with one queued run per instance.
    #[oai(status = 201)]
    Created(Json<BatchBody>),
}

#[derive(ApiResponse)]
pub enum BatchResponse {
    /// The batch.
    #[oai(status = 200)]
    Ok(Json<BatchBody>),
}

#[derive(ApiResponse)]
pub enum BatchListResponse {
    /// The user's batches, newest first.
    #[oai(status = 200)]
    Ok(Json<BatchList>),
}

/// Batch endpoints.
pub struct BatchesApi {
    pub state: Arc<AppState>,
}

fn batch_error(e: BatchError) -> ApiError {
    match e {
        BatchError::WorkflowNotFound => ApiError::not_found("workflow"),
        BatchError::NotFound => ApiError::not_found("batch"),
        e @ BatchError::InstanceNotFound { .. } => ApiError::NotFound(e.to_string()),
        e @ BatchError::VersionNotFound(_) => ApiError::field("version", e.to_string()),
        BatchError::Invalid { field, message } => ApiError::field(&field, message),
        BatchError::Render { field, source } => ApiError::field(&field, source.to_string()),
        BatchError::Conflict(m) => ApiError::conflict(m),
        BatchError::Db(e) => ApiError::internal(e),
    }
}

/// The instances of a create, each checked and named by its place (`instances[3]`).
fn instances(items: Vec<serde_json::Value>) -> Result<Vec<BatchInstance>, ApiError> {
    items
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            let at = format!("instances[{i}]");
            let x: BatchInstanceInput = item(v, &at)?;
            Ok(BatchInstance {
                instance_id: InstanceId(x.instance_id.get(&format!("{at}.instance_id"))?),
                parameters: opt(x.parameters, &format!("{at}.parameters"))?.unwrap_or_default(),
            })
        })
        .collect()
}

#[OpenApi(tag = "ApiTags::Batches")]
impl BatchesApi {
    /// Run one workflow on up to 100 of the user's instances: one queued run per
    /// instance (`triggered_by: batch`), each admitted under its own instance's caps.
    /// Bad input → 422 naming the field (`instances[3].instance_id`); another user's
    /// workflow or instance → 404.
    #[oai(path = "/batches", method = "post", operation_id = "createBatch")]
    async fn create(
        &self,
        auth: BearerAuth,
        body: Json<CreateBatch>,
    ) -> Result<CreatedBatch, Errors<{ AUTH | BODY | E404 }>> {
        let b = body.0;
        let trace = common::telemetry::trace::outgoing();
        let spec = BatchSpec {
            workflow_id: WorkflowId(b.workflow_id.get("workflow_id")?),
            name: opt(b.name, "name")?,
            instances: instances(b.instances.get("instances")?)?,
            parameters: opt(b.parameters, "parameters")?.unwrap_or_default(),
            window: opt(b.time_window, "time_window")?
                .map(TimeWindowInput::parse)
                .transpose()?,
            version: opt(b.version, "version")?,
            trace: trace.clone(),
        };
        let created = batch::create(&self.state.db, auth.0.user_id, &spec)
            .await
            .map_err(batch_error)?;
        // As a run made by `POST /workflows/{id}/executions`: a submit job per run (it
        // admits the run); a lost push is covered by the reconciler (the runs are queued).
        let jobs: Vec<(SubmitJob, Option<String>)> = created
            .runs
            .iter()
            .map(|id| (SubmitJob::new(*id, None), trace.clone()))
            .collect();
        if let Err(e) = self.state.producer.enqueue_batch_traced(&jobs).await {
            tracing::warn!(batch.id = %created.batch.id, error = %e, "could not enqueue a batch's runs; the reconciler will pick them up");
        }
        Ok(CreatedBatch::Created(Json(created.batch.into())))
    }

    /// The user's batches, newest first (`cursor`, `limit` ≤ 500, default 50).
    #[oai(path = "/batches", method = "get", operation_id = "listBatches")]
    async fn list(
        &self,
        auth: BearerAuth,
        paging: Params<Page<500>>,
    ) -> Result<BatchListResponse, Errors<{ AUTH | E422 }>> {
        let user = auth.0.user_id;
        let db = &self.state.db;
        let (rows, next) = page::keyset(
            &self.state.cursors,
            &page::scope(b"batches", user.0),
            (paging.0.cursor, paging.0.limit),
            |after, limit| async move {
                batch::list(db, user, after.map(|(at, id)| (at, BatchId(id))), limit)
                    .await
                    .map_err(ApiError::internal)
            },
        )
        .await?;
        Ok(BatchListResponse::Ok(Json(BatchList {
            items: rows.into_iter().map(Into::into).collect(),
            next_cursor: next.into(),
        })))
    }

    /// One batch, with its progress counts. Its runs: `GET /executions?batch_id=`.
    #[oai(path = "/batches/:id", method = "get", operation_id = "getBatch")]
    async fn get(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
    ) -> Result<BatchResponse, Errors<{ AUTH | E404 | E422 }>> {
        let row = batch::get(&self.state.db, auth.0.user_id, BatchId(id.0))
            .await
            .map_err(ApiError::internal)?
            .ok_or_else(|| ApiError::not_found("batch"))?;
        Ok(BatchResponse::Ok(Json(row.into())))
    }

    /// Cancel a batch: it is `cancelled` at once and every run still going is cancelled
    /// as `POST /executions/{id}/cancel` would (queued ones at once, those at AMC once AMC
    /// confirms); it has ended when `completed_at` is set. An ended (or already cancelled)
    /// batch → 409.
    #[oai(
        path = "/batches/:id/cancel",
        method = "post",
        operation_id = "cancelBatch"
    )]
    async fn cancel(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
    ) -> Result<BatchResponse, Errors<{ AUTH | E404 | E409 | E422 }>> {
        let changed = batch::cancel(&self.state.db, auth.0.user_id, BatchId(id.0))
            .await
            .map_err(batch_error)?;
        let jobs: Vec<CancelJob> = changed
            .cancel_requested
            .iter()
            .map(|id: &ExecutionId| CancelJob::new(*id, None))
            .collect();
        if !jobs.is_empty() {
            self.state
                .producer
                .enqueue_batch(&jobs)
                .await
                .map_err(ApiError::internal)?;
        }
        Ok(BatchResponse::Ok(Json(changed.batch.into())))
    }
}
