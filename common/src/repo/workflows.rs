//! Saved workflows: SQL with `{{name}}` placeholders and their default values, tags, and
//! the number of their latest version (`crate::workflow` keeps every version). A deleted
//! workflow is gone from every read here; its runs keep pointing at it.

use super::{RepoError, stmt};
use crate::ids::{InstanceId, TemplateId, UserId, WorkflowId};
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, FromQueryResult, TransactionTrait};
use serde_json::Value;

/// A workflow row.
#[derive(Debug, Clone, FromQueryResult)]
pub struct Workflow {
    pub id: WorkflowId,
    pub instance_id: InstanceId,
    pub name: String,
    pub description: Option<String>,
    pub sql_query: String,
    pub parameters: Value,
    /// The latest version's number (the SQL and parameters above are that version's).
    pub version: i32,
    /// A JSON array of strings.
    pub tags: Value,
    /// The query template it was made from, if any.
    pub template_id: Option<TemplateId>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Workflow {
    /// The tags as strings.
    pub fn tag_list(&self) -> Vec<String> {
        serde_json::from_value(self.tags.clone()).unwrap_or_default()
    }
}

/// What a new workflow needs (validated by the caller).
#[derive(Debug, Clone)]
pub struct NewWorkflow {
    pub instance_id: InstanceId,
    pub name: String,
    pub description: Option<String>,
    pub sql_query: String,
    pub parameters: Value,
    pub tags: Vec<String>,
    pub template_id: Option<TemplateId>,
}

/// A change of a workflow; `None` keeps a field. A new `sql_query` or `parameters`
/// (different from the latest version's) writes a new version.
#[derive(Debug, Clone, Default)]
pub struct WorkflowPatch {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub sql_query: Option<String>,
    pub parameters: Option<Value>,
    pub tags: Option<Vec<String>>,
}

pub(crate) const COLUMNS: &str = "id, instance_id, name, description, sql_query, parameters, version, \
    to_jsonb(tags) AS tags, template_id, created_at, updated_at";

/// Creates a workflow (and its version 1) on one of the user's instances; an instance of
/// another user (or none) → [`RepoError::NotFound`].
pub async fn create_workflow(
    db: &impl ConnectionTrait,
    user_id: UserId,
    new: NewWorkflow,
) -> Result<Workflow, RepoError> {
    let sql = format!(
        "WITH w AS (INSERT INTO workflows (id, user_id, instance_id, name, description, sql_query, parameters, \
           tags, template_id) \
         SELECT $1, i.user_id, i.id, $4, $5, $6, $7, ARRAY(SELECT jsonb_array_elements_text($8::jsonb)), $9 \
         FROM amc_instances i WHERE i.id = $3 AND i.user_id = $2 RETURNING *), \
         v AS (INSERT INTO workflow_versions (workflow_id, version, sql_query, parameters, created_at) \
           SELECT id, 1, sql_query, parameters, created_at FROM w) \
         SELECT {COLUMNS} FROM w"
    );
    let values = [
        WorkflowId::new().0.into(),
        user_id.into(),
        new.instance_id.into(),
        new.name.into(),
        new.description.into(),
        new.sql_query.into(),
        new.parameters.into(),
        serde_json::json!(new.tags).into(),
        new.template_id.into(),
    ];
    Workflow::find_by_statement(stmt(&sql, values))
        .one(db)
        .await?
        .ok_or(RepoError::NotFound)
}

/// A page of the user's workflows (those carrying `tag`, when given), newest first, after
/// `after` (`limit` rows at most).
pub async fn list_workflows(
    db: &impl ConnectionTrait,
    user_id: UserId,
    tag: Option<&str>,
    after: super::After,
    limit: u64,
) -> Result<Vec<Workflow>, RepoError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let (at, id) = after.unzip();
    let sql = format!(
        "SELECT {COLUMNS} FROM workflows WHERE user_id = $1 AND deleted_at IS NULL \
           AND ($2::text IS NULL OR tags @> ARRAY[$2::text]) \
           AND ($3::timestamptz IS NULL OR (created_at, id) < ($3::timestamptz, $4::uuid)) \
         ORDER BY created_at DESC, id DESC LIMIT $5"
    );
    let values = [
        user_id.into(),
        tag.map(str::to_owned).into(),
        at.into(),
        id.into(),
        limit.into(),
    ];
    Ok(Workflow::find_by_statement(stmt(&sql, values))
        .all(db)
        .await?)
}

/// One of the user's workflows.
pub async fn get_workflow(
    db: &impl ConnectionTrait,
    user_id: UserId,
    id: WorkflowId,
) -> Result<Workflow, RepoError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM workflows WHERE id = $1 AND user_id = $2 AND deleted_at IS NULL"
    );
    Workflow::find_by_statement(stmt(&sql, [id.into(), user_id.into()]))
        .one(db)
        .await?
        .ok_or(RepoError::NotFound)
}

/// Changes one of the user's workflows under its row lock; a change of SQL or parameters
/// writes the next version (the caller has checked that the result still renders: see
/// [`crate::workflow::check_defaults`]).
pub async fn update_workflow(
    db: &sea_orm::DatabaseConnection,
    user_id: UserId,
    id: WorkflowId,
    patch: WorkflowPatch,
) -> Result<Workflow, RepoError> {
    let txn = db.begin().await?;
    let sql = format!(
        "SELECT {COLUMNS} FROM workflows WHERE id = $1 AND user_id = $2 AND deleted_at IS NULL FOR UPDATE"
    );
    let current = Workflow::find_by_statement(stmt(&sql, [id.into(), user_id.into()]))
        .one(&txn)
        .await?
        .ok_or(RepoError::NotFound)?;
    let sql_query = patch.sql_query.unwrap_or_else(|| current.sql_query.clone());
    let parameters = patch
        .parameters
        .unwrap_or_else(|| current.parameters.clone());
    let changed = sql_query != current.sql_query || parameters != current.parameters;
    let version = current.version + i32::from(changed);
    let tags = patch.tags.unwrap_or_else(|| current.tag_list());
    let description = patch.description.unwrap_or(current.description);
    let sql = format!(
        "UPDATE workflows SET name = $3, description = $4, sql_query = $5, parameters = $6, version = $7, \
           tags = ARRAY(SELECT jsonb_array_elements_text($8::jsonb)), updated_at = now() \
         WHERE id = $1 AND user_id = $2 RETURNING {COLUMNS}"
    );
    let updated = Workflow::find_by_statement(stmt(
        &sql,
        [
            id.into(),
            user_id.into(),
            patch.name.unwrap_or(current.name).into(),
            description.into(),
            sql_query.clone().into(),
            parameters.clone().into(),
            version.into(),
            serde_json::json!(tags).into(),
        ],
    ))
    .one(&txn)
    .await?
    .ok_or(RepoError::NotFound)?;
    if changed {
        txn.execute_raw(stmt(
            "INSERT INTO workflow_versions (workflow_id, version, sql_query, parameters) VALUES ($1, $2, $3, $4)",
            [id.into(), version.into(), sql_query.into(), parameters.into()],
        ))
        .await?;
    }
    txn.commit().await?;
    Ok(updated)
}
