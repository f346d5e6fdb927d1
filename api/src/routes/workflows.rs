//! `/workflows`: saved AMC SQL with `{{name}}` placeholders and their default values.

use super::accounts::not_found;
use super::{ApiTags, required};
use crate::auth::BearerAuth;
use crate::error::ApiError;
use crate::state::AppState;
use chrono::{DateTime, Utc};
use common::ids::{InstanceId, WorkflowId};
use common::repo::workflows::{self, NewWorkflow, Workflow};
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use std::collections::BTreeMap;
use std::sync::Arc;
use uuid::Uuid;

/// A new workflow.
#[derive(Debug, Object)]
pub struct CreateWorkflow {
    pub name: String,
    /// One of the user's instances.
    pub instance_id: Uuid,
    /// AMC SQL; may hold `{{name}}` placeholders.
    pub sql_query: String,
    /// Default values of placeholders (each key must be a placeholder of `sql_query`).
    #[oai(default)]
    pub parameters: BTreeMap<String, serde_json::Value>,
    pub description: Option<String>,
}

/// A workflow.
#[derive(Debug, Object)]
pub struct WorkflowBody {
    pub id: Uuid,
    pub instance_id: Uuid,
    pub name: String,
    pub description: Option<String>,
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
            id: w.id,
            instance_id: w.instance_id,
            name: w.name,
            description: w.description,
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
    Ok(Json<Vec<WorkflowBody>>),
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
    ) -> Result<CreateWorkflowResponse, ApiError> {
        let b = body.0;
        let sql_query = required("sql_query", &b.sql_query, 100_000)?;
        let placeholders = common::sql::placeholders(&sql_query);
        if let Some(unknown) = b.parameters.keys().find(|k| !placeholders.contains(k)) {
            return Err(ApiError::field(
                &format!("parameters.{unknown}"),
                format!("`{unknown}` is not a placeholder of sql_query"),
            ));
        }
        let new = NewWorkflow {
            instance_id: InstanceId(b.instance_id),
            name: required("name", &b.name, 200)?,
            description: b
                .description
                .map(|d| d.trim().to_string())
                .filter(|d| !d.is_empty()),
            sql_query,
            parameters: serde_json::Value::Object(b.parameters.into_iter().collect()),
        };
        let workflow = workflows::create_workflow(&self.state.db, auth.0.user_id, new)
            .await
            .map_err(|e| not_found(e, "instance"))?;
        Ok(CreateWorkflowResponse::Created(Json(workflow.into())))
    }

    /// The user's workflows.
    #[oai(path = "/workflows", method = "get", operation_id = "listWorkflows")]
    async fn list(&self, auth: BearerAuth) -> Result<WorkflowListResponse, ApiError> {
        let rows = workflows::list_workflows(&self.state.db, auth.0.user_id).await?;
        Ok(WorkflowListResponse::Ok(Json(
            rows.into_iter().map(Into::into).collect(),
        )))
    }

    /// One workflow.
    #[oai(path = "/workflows/:id", method = "get", operation_id = "getWorkflow")]
    async fn get(&self, auth: BearerAuth, id: Path<Uuid>) -> Result<WorkflowResponse, ApiError> {
        let workflow = workflows::get_workflow(&self.state.db, auth.0.user_id, WorkflowId(id.0))
            .await
            .map_err(|e| not_found(e, "workflow"))?;
        Ok(WorkflowResponse::Ok(Json(workflow.into())))
    }
}
