//! `/workflows`: saved AMC SQL with `{{name}}` placeholders and their default values,
//! edited into immutable versions, tagged, validated without running, and deleted.

use super::ApiTags;
use super::accounts::not_found;
use super::executions::{TimeWindowBody, TimeWindowInput};
use crate::auth::BearerAuth;
use crate::error::status::{AUTH, BODY, E404, E409, E422};
use crate::error::{ApiError, Errors};
use crate::input::{Clearable, Id, In, Int, JsonObject, LongText, Name, Nullable, Obj, Tags, opt};
use crate::page;
use crate::params::{Page, Params};
use crate::state::AppState;
use chrono::{DateTime, Utc};
use common::ids::{InstanceId, WorkflowId};
use common::repo::workflows::{self, NewWorkflow, Workflow, WorkflowPatch};
use common::workflow::{self as wf, DeleteError, ValidateError, VersionRow};
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use std::sync::Arc;
use uuid::Uuid;

/// A new workflow.
#[derive(Debug, Object)]
pub struct CreateWorkflow {
    pub name: In<Name<200>>,
    /// One of the user's instances.
    pub instance_id: In<Id>,
    /// AMC SQL; may hold `{{name}}` placeholders. At most 100,000 characters.
    pub sql_query: In<LongText<100000>>,
    /// Default values of placeholders (each key must be a placeholder of `sql_query`).
    pub parameters: Option<In<JsonObject>>,
    /// At most 2,000 characters.
    pub description: Option<In<LongText<2000>>>,
    /// Labels to filter by (`GET /workflows?tag=`): at most 20, each 1 to 50 characters.
    pub tags: Option<In<Tags>>,
}

/// A change of a workflow; absent fields keep their value. A new `sql_query` or
/// `parameters` makes a new version.
#[derive(Debug, Object)]
pub struct UpdateWorkflow {
    pub name: Option<In<Name<200>>>,
    /// `null` removes it.
    pub description: Clearable<LongText<2000>>,
    pub sql_query: Option<In<LongText<100000>>>,
    /// The new defaults (they replace the old ones whole).
    pub parameters: Option<In<JsonObject>>,
    pub tags: Option<In<Tags>>,
}

/// A workflow.
#[derive(Debug, Object)]
pub struct WorkflowBody {
    pub id: Uuid,
    pub instance_id: Uuid,
    pub name: String,
    pub description: Nullable<String>,
    pub sql_query: String,
    /// Default values of placeholders.
    pub parameters: serde_json::Value,
    /// The placeholder names of `sql_query`, in order of first appearance.
    pub placeholders: Vec<String>,
    /// The latest version (1 at creation; each change of SQL or parameters adds one).
    pub version: i32,
    pub tags: Vec<String>,
    /// The query template it was made from.
    pub template_id: Nullable<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Workflow> for WorkflowBody {
    fn from(w: Workflow) -> Self {
        Self {
            placeholders: common::sql::placeholders(&w.sql_query),
            tags: w.tag_list(),
            version: w.version,
            template_id: w.template_id.map(|t| t.0).into(),
            id: w.id.0,
            instance_id: w.instance_id.0,
            name: w.name,
            description: w.description.into(),
            sql_query: w.sql_query,
            parameters: w.parameters,
            created_at: w.created_at,
            updated_at: w.updated_at,
        }
    }
}

#[derive(ApiResponse)]
pub enum CreateWorkflowResponse {
    /// The workflow was created.
    #[oai(status = 201)]
    Created(Json<WorkflowBody>),
}

#[derive(ApiResponse)]
pub enum WorkflowResponse {
    /// The workflow.
    #[oai(status = 200)]
    Ok(Json<WorkflowBody>),
}

/// One version of a workflow: its SQL and defaults as they were.
#[derive(Debug, Object)]
pub struct VersionBody {
    pub workflow_id: Uuid,
    pub version: i32,
    pub sql_query: String,
    pub parameters: serde_json::Value,
    pub placeholders: Vec<String>,
    pub created_at: DateTime<Utc>,
}

impl From<VersionRow> for VersionBody {
    fn from(v: VersionRow) -> Self {
        Self {
            placeholders: common::sql::placeholders(&v.sql_query),
            workflow_id: v.workflow_id.0,
            version: v.version,
            sql_query: v.sql_query,
            parameters: v.parameters,
            created_at: v.created_at,
        }
    }
}

/// A page of a workflow's versions, newest first.
#[derive(Debug, Object)]
pub struct VersionList {
    pub items: Vec<VersionBody>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Nullable<String>,
}

/// What to check: a run's inputs, as `POST /workflows/{id}/executions` takes them.
#[derive(Debug, Object)]
pub struct ValidateBody {
    /// Values of the workflow's `{{placeholders}}`; defaults fill the rest.
    pub parameters: Option<In<JsonObject>>,
    /// Absent: the default window (the 30 days ending 14 days ago, in the instance's zone).
    pub time_window: Option<In<Obj<TimeWindowInput>>>,
    /// A version of the workflow (default: the latest).
    pub version: Option<In<Int<1, 1000000>>>,
}

/// What a run with these inputs would send AMC (nothing is recorded).
#[derive(Debug, Object)]
pub struct ValidatedBody {
    pub version: i32,
    /// The SQL as AMC would receive it: rendered, on one line.
    pub sql_query: String,
    /// The parameters it was rendered with (defaults merged).
    pub parameters: serde_json::Value,
    pub time_window: TimeWindowBody,
    /// True when no `time_window` was given and the default one is shown.
    pub time_window_defaulted: bool,
}

#[derive(ApiResponse)]
pub enum VersionListResponse {
    /// The workflow's versions, newest first.
    #[oai(status = 200)]
    Ok(Json<VersionList>),
}

#[derive(ApiResponse)]
pub enum VersionResponse {
    /// The version.
    #[oai(status = 200)]
    Ok(Json<VersionBody>),
}

#[derive(ApiResponse)]
pub enum ValidatedResponse {
    /// The parameters are valid; the SQL a run would send.
    #[oai(status = 200)]
    Ok(Json<ValidatedBody>),
}

#[derive(ApiResponse)]
pub enum DeletedResponse {
    /// Deleted; its runs stay readable.
    #[oai(status = 204)]
    NoContent,
}

#[derive(ApiResponse)]
pub enum WorkflowListResponse {
    /// The user's workflows, newest first.
    #[oai(status = 200)]
    Ok(Json<WorkflowList>),
}

/// A page of the user's workflows, newest first.
#[derive(Debug, Object)]
pub struct WorkflowList {
    pub items: Vec<WorkflowBody>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Nullable<String>,
}

/// Workflow endpoints.
pub struct WorkflowsApi {
    pub state: Arc<AppState>,
}

#[OpenApi(tag = "ApiTags::Workflows")]
impl WorkflowsApi {
    /// Save a workflow on one of the user's instances.
    #[oai(path = "/workflows", method = "post", operation_id = "createWorkflow")]
    async fn create(
        &self,
        auth: BearerAuth,
        body: Json<CreateWorkflow>,
    ) -> Result<CreateWorkflowResponse, Errors<{ AUTH | BODY | E404 }>> {
        let b = body.0;
        let name = b.name.get("name")?;
        let instance_id = InstanceId(b.instance_id.get("instance_id")?);
        let sql_query = b.sql_query.get("sql_query")?;
        if sql_query.trim().is_empty() {
            return Err(ApiError::field("sql_query", "must not be empty").into());
        }
        let parameters = opt(b.parameters, "parameters")?.unwrap_or_default();
        check_defaults(&sql_query, &parameters)?;
        let new = NewWorkflow {
            tags: opt(b.tags, "tags")?.unwrap_or_default(),
            template_id: None,
            instance_id,
            name,
            description: opt(b.description, "description")?
                .map(|d| d.trim().to_string())
                .filter(|d| !d.is_empty()),
            sql_query,
            parameters: serde_json::Value::Object(parameters),
        };
        let workflow = workflows::create_workflow(&self.state.db, auth.0.user_id, new)
            .await
            .map_err(|e| not_found(e, "instance"))?;
        Ok(CreateWorkflowResponse::Created(Json(workflow.into())))
    }

    /// The user's workflows, newest first (`cursor`, `limit` ≤ 500, default 50; with `tag`,
    /// those carrying it).
    #[oai(path = "/workflows", method = "get", operation_id = "listWorkflows")]
    async fn list(
        &self,
        auth: BearerAuth,
        tag: Query<Option<String>>,
        paging: Params<Page<500>>,
    ) -> Result<WorkflowListResponse, Errors<{ AUTH | E422 }>> {
        let tag = tag
            .0
            .map(|t| common::text::name(&t, 50).map_err(|e| ApiError::field("tag", e.to_string())))
            .transpose()?;
        let user = auth.0.user_id;
        let db = &self.state.db;
        let (rows, next) = page::keyset(
            &self.state.cursors,
            &page::scope(b"workflows", user.0),
            (paging.0.cursor, paging.0.limit),
            |after, limit| workflows::list_workflows(db, user, tag.as_deref(), after, limit),
        )
        .await?;
        Ok(WorkflowListResponse::Ok(Json(WorkflowList {
            items: rows.into_iter().map(Into::into).collect(),
            next_cursor: next.into(),
        })))
    }

    /// One workflow.
    #[oai(path = "/workflows/:id", method = "get", operation_id = "getWorkflow")]
    async fn get(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
    ) -> Result<WorkflowResponse, Errors<{ AUTH | E404 | E422 }>> {
        let workflow = workflows::get_workflow(&self.state.db, auth.0.user_id, WorkflowId(id.0))
            .await
            .map_err(|e| not_found(e, "workflow"))?;
        Ok(WorkflowResponse::Ok(Json(workflow.into())))
    }

    /// Change a workflow's name, description, tags, SQL or default parameters. A change
    /// of SQL or parameters makes a new immutable version; runs already made keep theirs.
    #[oai(
        path = "/workflows/:id",
        method = "patch",
        operation_id = "updateWorkflow"
    )]
    async fn update(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
        body: Json<UpdateWorkflow>,
    ) -> Result<WorkflowResponse, Errors<{ AUTH | BODY | E404 }>> {
        let user = auth.0.user_id;
        let b = body.0;
        let sql_query = opt(b.sql_query, "sql_query")?;
        if sql_query.as_ref().is_some_and(|s| s.trim().is_empty()) {
            return Err(ApiError::field("sql_query", "must not be empty").into());
        }
        let parameters = opt(b.parameters, "parameters")?;
        let patch = WorkflowPatch {
            name: opt(b.name, "name")?,
            description: b
                .description
                .get("description")?
                .map(|d| d.map(|d| d.trim().to_string()).filter(|d| !d.is_empty())),
            tags: opt(b.tags, "tags")?,
            parameters: parameters.clone().map(serde_json::Value::Object),
            sql_query: sql_query.clone(),
        };
        if sql_query.is_some() || parameters.is_some() {
            // The defaults must name placeholders of the SQL they will go with.
            let current = workflows::get_workflow(&self.state.db, user, WorkflowId(id.0))
                .await
                .map_err(|e| not_found(e, "workflow"))?;
            let sql = sql_query.as_deref().unwrap_or(&current.sql_query);
            let defaults = match &parameters {
                Some(p) => p.clone(),
                None => current.parameters.as_object().cloned().unwrap_or_default(),
            };
            check_defaults(sql, &defaults)?;
        }
        let workflow = workflows::update_workflow(&self.state.db, user, WorkflowId(id.0), patch)
            .await
            .map_err(|e| not_found(e, "workflow"))?;
        Ok(WorkflowResponse::Ok(Json(workflow.into())))
    }

    /// Delete a workflow. Refused (409) while runs not yet finished, enabled schedules or
    /// running (or paused) collections use it; the runs it made stay readable.
    #[oai(
        path = "/workflows/:id",
        method = "delete",
        operation_id = "deleteWorkflow"
    )]
    async fn delete(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
    ) -> Result<DeletedResponse, Errors<{ AUTH | E404 | E409 | E422 }>> {
        wf::delete(&self.state.db, auth.0.user_id, WorkflowId(id.0))
            .await
            .map_err(|e| match e {
                DeleteError::NotFound => ApiError::not_found("workflow"),
                e @ DeleteError::InUse(_) => ApiError::conflict(e.to_string()),
                DeleteError::Db(e) => ApiError::internal(e),
            })?;
        Ok(DeletedResponse::NoContent)
    }

    /// A workflow's versions, newest first (`cursor`, `limit` ≤ 500, default 50).
    #[oai(
        path = "/workflows/:id/versions",
        method = "get",
        operation_id = "listWorkflowVersions"
    )]
    async fn versions(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
        paging: Params<Page<500>>,
    ) -> Result<VersionListResponse, Errors<{ AUTH | E404 | E422 }>> {
        let user = auth.0.user_id;
        let scope = page::scope(b"workflow-versions", id.0);
        let before = match paging.0.cursor.as_deref().filter(|c| !c.is_empty()) {
            None => None,
            Some(c) => Some(
                self.state
                    .cursors
                    .open_offset(&scope, c)
                    .and_then(|v| i32::try_from(v).ok())
                    .ok_or_else(page::bad_cursor)?,
            ),
        };
        let limit = page::limit(paging.0.limit);
        let mut rows = wf::list_versions(&self.state.db, user, WorkflowId(id.0), before, limit + 1)
            .await
            .map_err(|e| not_found(e, "workflow"))?;
        let next = page::next_cursor(&mut rows, limit, |v| {
            self.state.cursors.sign_offset(&scope, v.version as u64)
        });
        Ok(VersionListResponse::Ok(Json(VersionList {
            items: rows.into_iter().map(Into::into).collect(),
            next_cursor: next.into(),
        })))
    }

    /// One version of a workflow.
    #[oai(
        path = "/workflows/:id/versions/:version",
        method = "get",
        operation_id = "getWorkflowVersion"
    )]
    async fn version(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
        version: Path<i32>,
    ) -> Result<VersionResponse, Errors<{ AUTH | E404 | E422 }>> {
        let row = wf::get_version(&self.state.db, auth.0.user_id, WorkflowId(id.0), version.0)
            .await
            .map_err(|e| not_found(e, "workflow version"))?;
        Ok(VersionResponse::Ok(Json(row.into())))
    }

    /// Check a run's inputs and render the SQL it would send, without running it.
    #[oai(
        path = "/workflows/:id/validate",
        method = "post",
        operation_id = "validateWorkflow"
    )]
    async fn validate(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
        body: Json<ValidateBody>,
    ) -> Result<ValidatedResponse, Errors<{ AUTH | BODY | E404 }>> {
        let b = body.0;
        let parameters = opt(b.parameters, "parameters")?.unwrap_or_default();
        let window = opt(b.time_window, "time_window")?
            .map(TimeWindowInput::parse)
            .transpose()?;
        let version = opt(b.version, "version")?;
        let inputs = wf::RunInputs {
            version,
            parameters,
            window,
        };
        let v = wf::validate(&self.state.db, auth.0.user_id, WorkflowId(id.0), inputs)
            .await
            .map_err(|e| match e {
                ValidateError::NotFound => ApiError::not_found("workflow"),
                e @ ValidateError::VersionNotFound(_) => ApiError::field("version", e.to_string()),
                ValidateError::Render(e) => super::executions::render_error(e),
                ValidateError::Db(e) => ApiError::internal(e),
                e @ ValidateError::Repo(_) => ApiError::internal(e),
            })?;
        Ok(ValidatedResponse::Ok(Json(ValidatedBody {
            version: v.version,
            sql_query: v.sql_query,
            parameters: v.parameters,
            time_window: TimeWindowBody::of(&v.time_window),
            time_window_defaulted: v.time_window_defaulted,
        })))
    }
}

/// 422 naming the first default that is not a placeholder of `sql`.
fn check_defaults(
    sql: &str,
    parameters: &serde_json::Map<String, serde_json::Value>,
) -> Result<(), ApiError> {
    match wf::check_defaults(sql, parameters) {
        Some(unknown) => Err(ApiError::field(
            &format!("parameters.{unknown}"),
            format!("`{unknown}` is not a placeholder of sql_query"),
        )),
        None => Ok(()),
    }
}
