//! Saved workflows: SQL with `{{name}}` placeholders and their default values.

use super::{RepoError, stmt};
use crate::ids::{InstanceId, UserId, WorkflowId};
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, FromQueryResult};

/// A workflow row.
#[derive(Debug, Clone, FromQueryResult)]
pub struct Workflow {
    pub id: WorkflowId,
    pub instance_id: InstanceId,
    pub name: String,
    pub description: Option<String>,
    pub sql_query: String,
    pub parameters: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What a new workflow needs (validated by the caller).
#[derive(Debug, Clone)]
pub struct NewWorkflow {
    pub instance_id: InstanceId,
    pub name: String,
    pub description: Option<String>,
    pub sql_query: String,
    pub parameters: serde_json::Value,
}

const COLUMNS: &str =
    "id, instance_id, name, description, sql_query, parameters, created_at, updated_at";

/// Creates a workflow on one of the user's instances; an instance of another user (or
/// none) → [`RepoError::NotFound`].
pub async fn create_workflow(
    db: &impl ConnectionTrait,
    user_id: UserId,
    new: NewWorkflow,
) -> Result<Workflow, RepoError> {
    let sql = format!(
        "INSERT INTO workflows (id, user_id, instance_id, name, description, sql_query, parameters)
         SELECT $1, i.user_id, i.id, $4, $5, $6, $7 FROM amc_instances i WHERE i.id = $3 AND i.user_id = $2
         RETURNING {COLUMNS}"
    );
    let values = [
        WorkflowId::new().0.into(),
        user_id.into(),
        new.instance_id.into(),
        new.name.into(),
        new.description.into(),
        new.sql_query.into(),
        new.parameters.into(),
    ];
    Workflow::find_by_statement(stmt(&sql, values))
        .one(db)
        .await?
        .ok_or(RepoError::NotFound)
}

/// A page of the user's workflows, newest first, after `after` (`limit` rows at most).
pub async fn list_workflows(
    db: &impl ConnectionTrait,
    user_id: UserId,
    after: super::After,
    limit: u64,
) -> Result<Vec<Workflow>, RepoError> {
    let page = super::page_of_user(COLUMNS, "workflows", user_id, after, limit);
    Ok(Workflow::find_by_statement(page).all(db).await?)
}

/// One of the user's workflows.
pub async fn get_workflow(
    db: &impl ConnectionTrait,
    user_id: UserId,
    id: WorkflowId,
) -> Result<Workflow, RepoError> {
    let sql = format!("SELECT {COLUMNS} FROM workflows WHERE id = $1 AND user_id = $2");
    Workflow::find_by_statement(stmt(&sql, [id.into(), user_id.into()]))
        .one(db)
        .await?
        .ok_or(RepoError::NotFound)
}
