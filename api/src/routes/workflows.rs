//! `/workflows`: saved AMC SQL with `{{name}}` placeholders and their default values.

use super::ApiTags;
use super::accounts::not_found;
use crate::auth::BearerAuth;
use crate::error::status::{AUTH, BODY, E404, E422};
use crate::error::{ApiError, Errors};
use crate::input::{Id, In, JsonObject, LongText, Name, Nullable, opt};
use crate::page;
use crate::state::AppState;
use chrono::{DateTime, Utc};
use common::ids::{InstanceId, WorkflowId};
use common::repo::workflows::{self, NewWorkflow, Workflow};
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
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Workflow> for WorkflowBody {
    fn from(w: Workflow) -> Self {
        Self {
            placeholders: common::sql::placeholders(&w.sql_query),
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
        if let Some(unknown) = parameters
            .keys()
            .find(|k| !common::sql::is_known_name(&sql_query, k))
        {
            return Err(ApiError::field(
                &format!("parameters.{unknown}"),
                format!("`{unknown}` is not a placeholder of sql_query"),
            )
            .into());
        }
        let new = NewWorkflow {
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

    /// The user's workflows, newest first (`cursor`, `limit` ≤ 500, default 50).
    #[oai(path = "/workflows", method = "get", operation_id = "listWorkflows")]
    async fn list(
        &self,
        auth: BearerAuth,
        cursor: Query<Option<String>>,
        #[oai(validator(minimum(value = "1"), maximum(value = "500")))] limit: Query<Option<u32>>,
    ) -> Result<WorkflowListResponse, Errors<{ AUTH | E422 }>> {
        let user = auth.0.user_id;
        let db = &self.state.db;
        let (rows, next) = page::keyset(
            &self.state.cursors,
            &page::scope(b"workflows", user.0),
            (cursor.0, limit.0),
            |after, limit| workflows::list_workflows(db, user, after, limit),
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
}
