//! A workflow's versions: its SQL and default parameters as they were at each change.
//! Rows are only ever inserted (a trigger refuses updates).

use crate::ids::{UserId, WorkflowId};
use crate::repo::{RepoError, stmt};
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, FromQueryResult};
use serde_json::Value;

/// One version of a workflow.
#[derive(Debug, Clone, FromQueryResult)]
pub struct VersionRow {
    pub workflow_id: WorkflowId,
    pub version: i32,
    pub sql_query: String,
    pub parameters: Value,
    pub created_at: DateTime<Utc>,
}

/// The columns of a [`VersionRow`].
pub const VERSION_COLUMNS: &str = "workflow_id, version, sql_query, parameters, created_at";

/// The versions of one of the user's workflows below `before` (all when `None`), newest
/// first, at most `limit`.
pub async fn list_versions(
    db: &impl ConnectionTrait,
    user: UserId,
    id: WorkflowId,
    before: Option<i32>,
    limit: u64,
) -> Result<Vec<VersionRow>, RepoError> {
    crate::repo::workflows::get_workflow(db, user, id).await?;
    let sql = format!(
        "SELECT {VERSION_COLUMNS} FROM workflow_versions WHERE workflow_id = $1 \
           AND ($2::int IS NULL OR version < $2) ORDER BY version DESC LIMIT $3"
    );
    Ok(VersionRow::find_by_statement(stmt(
        &sql,
        [id.into(), before.into(), (limit as i64).into()],
    ))
    .all(db)
    .await?)
}

/// One version of one of the user's workflows.
pub async fn get_version(
    db: &impl ConnectionTrait,
    user: UserId,
    id: WorkflowId,
    version: i32,
) -> Result<VersionRow, RepoError> {
    let sql = format!(
        "SELECT v.{} FROM workflow_versions v JOIN workflows w ON w.id = v.workflow_id \
         WHERE v.workflow_id = $1 AND v.version = $2 AND w.user_id = $3 AND w.deleted_at IS NULL",
        VERSION_COLUMNS.replace(", ", ", v.")
    );
    VersionRow::find_by_statement(stmt(&sql, [id.into(), version.into(), user.into()]))
        .one(db)
        .await?
        .ok_or(RepoError::NotFound)
}
