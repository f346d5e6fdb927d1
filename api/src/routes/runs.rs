//! The run history: `GET /executions` (the user's runs, newest first, filtered, one keyset
//! page at a time), "refresh status now" for one running run or all of them, and retry of
//! an ended run. Records and enqueues only; the workers do the rest.

use super::ApiTags;
use super::executions::ExecutionBody;
use crate::auth::BearerAuth;
use crate::error::status::{AUTH, E404, E409, E422};
use crate::error::{ApiError, Errors};
use crate::input::{Nullable, instant_in_range};
use crate::page;
use crate::params::{Page, Params};
use crate::state::AppState;
use chrono::{DateTime, Utc};
use common::execution::{self, ListFilter, RetryError, Status, TriggeredBy};
use common::ids::{BatchId, CollectionId, ExecutionId, InstanceId, ScheduleId, UserId, WorkflowId};
use common::jobs::{PollJob, SubmitJob};
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use std::sync::Arc;
use uuid::Uuid;

crate::query_group! {
    /// The filters of `GET /executions`, each a query parameter.
    pub struct RunFilters {
        workflow_id: Option<Uuid>,
        instance_id: Option<Uuid>,
        #[default] status: Vec<Status>,
        triggered_by: Option<TriggeredBy>,
        schedule_id: Option<Uuid>,
        collection_id: Option<Uuid>,
        batch_id: Option<Uuid>,
        created_after: Option<DateTime<Utc>>,
        created_before: Option<DateTime<Utc>>,
    }
}

/// A page of the user's runs, newest first.
#[derive(Debug, Object)]
pub struct ExecutionList {
    pub items: Vec<ExecutionBody>,
    /// Pass as `cursor` (with the same filters) for the next page; null on the last page.
    pub next_cursor: Nullable<String>,
}

/// The runs whose status check was enqueued now.
#[derive(Debug, Object)]
pub struct RefreshedBody {
    /// Running runs whose next AMC status check is now due and enqueued. A run whose
    /// check was already due or under way is not listed (it needs no new one).
    pub execution_ids: Vec<Uuid>,
}

#[derive(ApiResponse)]
pub enum ExecutionListResponse {
    /// A page of the user's runs, newest first.
    #[oai(status = 200)]
    Ok(Json<ExecutionList>),
}

#[derive(ApiResponse)]
pub enum RefreshResponse {
    /// The checks are enqueued; their outcome shows on the runs.
    #[oai(status = 202)]
    Accepted(Json<RefreshedBody>),
}

#[derive(ApiResponse)]
pub enum RetryResponse {
    /// The new run, queued, with `retry_of` naming the old one.
    #[oai(status = 202)]
    Accepted(Json<ExecutionBody>),
}

/// Run history endpoints.
pub struct RunsApi {
    pub state: Arc<AppState>,
}

impl RunsApi {
    /// Enqueues the brought-forward checks. A lost push is covered by the reconciler:
    /// each row is due now.
    async fn enqueue_checks(&self, refreshed: &[execution::Refreshed]) {
        let jobs: Vec<PollJob> = refreshed
            .iter()
            .map(|r| PollJob::new(r.id, Some(r.due)))
            .collect();
        if jobs.is_empty() {
            return;
        }
        if let Err(e) = self.state.producer.enqueue_batch(&jobs).await {
            tracing::warn!(runs = jobs.len(), error = %e, "could not enqueue status checks; the reconciler will pick them up");
        }
    }

    async fn refresh(
        &self,
        user: UserId,
        only: Option<ExecutionId>,
    ) -> Result<Vec<Uuid>, ApiError> {
        let refreshed = execution::refresh_checks(&self.state.db, user, only)
            .await
            .map_err(ApiError::internal)?;
        self.enqueue_checks(&refreshed).await;
        Ok(refreshed.into_iter().map(|r| r.id.0).collect())
    }
}

/// An instant filter the database can hold; out of range → 422 naming `field`.
fn in_range(t: Option<DateTime<Utc>>, field: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
    t.map(instant_in_range)
        .transpose()
        .map_err(|m| ApiError::field(field, m))
}

#[OpenApi(tag = "ApiTags::Executions")]
impl RunsApi {
    /// The user's runs, newest first (`cursor`, `limit` ≤ 500, default 50). Every filter
    /// given narrows the list; `status` may be repeated (any of them); `batch_id` lists a
    /// batch's runs; `created_after` and `created_before` (RFC 3339) are exclusive.
    #[oai(path = "/executions", method = "get", operation_id = "listExecutions")]
    async fn list(
        &self,
        auth: BearerAuth,
        paging: Params<Page<500>>,
        Params(f): Params<RunFilters>,
    ) -> Result<ExecutionListResponse, Errors<{ AUTH | E422 }>> {
        let user = auth.0.user_id;
        let filter = ListFilter {
            workflow_id: f.workflow_id.map(WorkflowId),
            instance_id: f.instance_id.map(InstanceId),
            statuses: f.status,
            triggered_by: f.triggered_by,
            schedule_id: f.schedule_id.map(ScheduleId),
            collection_id: f.collection_id.map(CollectionId),
            batch_id: f.batch_id.map(BatchId),
            created_after: in_range(f.created_after, "created_after")?,
            created_before: in_range(f.created_before, "created_before")?,
        };
        let db = &self.state.db;
        let (rows, next) = page::keyset(
            &self.state.cursors,
            &page::scope(b"executions", user.0),
            (paging.0.cursor, paging.0.limit),
            |after, limit| async move {
                execution::list(
                    db,
                    user,
                    &filter,
                    after.map(|(at, id)| (at, ExecutionId(id))),
                    limit,
                )
                .await
                .map_err(ApiError::internal)
            },
        )
        .await?;
        Ok(ExecutionListResponse::Ok(Json(ExecutionList {
            items: rows.into_iter().map(Into::into).collect(),
            next_cursor: next.into(),
        })))
    }

    /// Refresh the status of all the user's running runs now: each one's next AMC status
    /// check is made due and enqueued at once (the answer does not wait for them).
    #[oai(
        path = "/executions/refresh",
        method = "post",
        operation_id = "refreshExecutions"
    )]
    async fn refresh_all(&self, auth: BearerAuth) -> Result<RefreshResponse, Errors<AUTH>> {
        let execution_ids = self.refresh(auth.0.user_id, None).await?;
        Ok(RefreshResponse::Accepted(Json(RefreshedBody {
            execution_ids,
        })))
    }

    /// Refresh one running run's status now: its next AMC status check is made due and
    /// enqueued at once. A run that is not `running` has no status to check at AMC → 409.
    #[oai(
        path = "/executions/:id/refresh",
        method = "post",
        operation_id = "refreshExecution"
    )]
    async fn refresh_one(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
    ) -> Result<RefreshResponse, Errors<{ AUTH | E404 | E409 | E422 }>> {
        let user = auth.0.user_id;
        let id = ExecutionId(id.0);
        let row = execution::find_for_user(&self.state.db, user, id)
            .await
            .map_err(ApiError::internal)?
            .ok_or_else(|| ApiError::not_found("execution"))?;
        if row.status != Status::Running {
            return Err(ApiError::conflict(format!(
                "the execution is {}; only a running execution has a status to check at AMC",
                row.status
            ))
            .into());
        }
        let execution_ids = self.refresh(user, Some(id)).await?;
        Ok(RefreshResponse::Accepted(Json(RefreshedBody {
            execution_ids,
        })))
    }

    /// Run an ended run again: a new run with the same workflow, instance, rendered SQL,
    /// parameters and time window, `triggered_by: api`, whose `retry_of` names the old
    /// one. A run that has not ended (succeeded, failed or cancelled) → 409.
    #[oai(
        path = "/executions/:id/retry",
        method = "post",
        operation_id = "retryExecution"
    )]
    async fn retry(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
    ) -> Result<RetryResponse, Errors<{ AUTH | E404 | E409 | E422 }>> {
        let trace = common::telemetry::trace::outgoing();
        let row = execution::retry(
            &self.state.db,
            auth.0.user_id,
            ExecutionId(id.0),
            trace.clone(),
        )
        .await
        .map_err(|e| match e {
            RetryError::NotFound => ApiError::not_found("execution"),
            RetryError::NotEnded(status) => ApiError::conflict(format!(
                "the execution is still {status}; only an ended execution can be retried"
            )),
            e @ (RetryError::Db(_) | RetryError::TimeZone { .. } | RetryError::Create(_)) => {
                ApiError::internal(e)
            }
        })?;
        // A lost push is covered by the reconciler (the run is queued).
        let job = [(SubmitJob::new(row.id, None), trace)];
        if let Err(e) = self.state.producer.enqueue_batch_traced(&job).await {
            tracing::warn!(execution.id = %row.id, error = %e, "could not enqueue a retried run; the reconciler will pick it up");
        }
        Ok(RetryResponse::Accepted(Json(row.into())))
    }
}
