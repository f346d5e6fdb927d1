//! The `query_templates` table. A user sees their own templates and every public one
//! (those of no user are the system's, public); only the owner changes or deletes one.

use super::schema::{self, SchemaError};
use crate::ids::{InstanceId, TemplateId, UserId};
use crate::repo::workflows::{NewWorkflow, Workflow, create_workflow};
use crate::repo::{RepoError, stmt};
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, FromQueryResult, TransactionTrait};
use serde_json::{Map, Value, json};
use uuid::Uuid;

/// A template as stored.
#[derive(Debug, Clone, FromQueryResult)]
pub struct TemplateRow {
    pub id: TemplateId,
    pub user_id: Option<UserId>,
    pub name: String,
    pub description: Option<String>,
    pub category: Option<String>,
    /// A JSON array of strings.
    pub tags: Value,
    pub sql_query: String,
    pub parameter_schema: Value,
    pub is_public: bool,
    pub usage_count: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl TemplateRow {
    pub fn tag_list(&self) -> Vec<String> {
        serde_json::from_value(self.tags.clone()).unwrap_or_default()
    }
}

const COLUMNS: &str = "id, user_id, name, description, category, to_jsonb(tags) AS tags, sql_query, \
    parameter_schema, is_public, usage_count, created_at, updated_at";

/// Who may read a template: its owner, and everyone when it is public.
const VISIBLE: &str = "(user_id = $1 OR is_public)";

/// A new template (fields checked by the caller, the schema by [`create`]).
#[derive(Debug, Clone)]
pub struct NewTemplate {
    pub name: String,
    pub description: Option<String>,
    pub category: Option<String>,
    pub tags: Vec<String>,
    pub sql_query: String,
    pub parameter_schema: Value,
    pub is_public: bool,
}

/// A change; `None` keeps a field (`Some(None)` clears an optional one).
#[derive(Debug, Clone, Default)]
pub struct TemplatePatch {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub category: Option<Option<String>>,
    pub tags: Option<Vec<String>>,
    pub sql_query: Option<String>,
    pub parameter_schema: Option<Value>,
    pub is_public: Option<bool>,
}

/// A workflow to make from a template.
#[derive(Debug, Clone)]
pub struct TemplateUse {
    pub instance_id: InstanceId,
    pub name: String,
    /// Given over the schema's defaults.
    pub parameters: Map<String, Value>,
}

/// What a list shows.
#[derive(Debug, Clone, Default)]
pub struct TemplateFilter {
    pub category: Option<String>,
    pub tag: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// No such template the user may see (or, to change, owns).
    #[error("query template not found")]
    NotFound,
    /// No such instance of the user.
    #[error("instance not found")]
    InstanceNotFound,
    /// The schema, or parameters it refuses (the path names the field).
    #[error(transparent)]
    Schema(#[from] SchemaError),
    #[error(transparent)]
    Db(#[from] DbErr),
    /// Recording the template's workflow was refused (a unique key, a check).
    #[error("the template's workflow was not recorded")]
    Workflow(#[source] RepoError),
}

impl From<RepoError> for TemplateError {
    fn from(e: RepoError) -> Self {
        match e {
            RepoError::NotFound => TemplateError::NotFound,
            RepoError::Db(e) => TemplateError::Db(e),
            other => TemplateError::Workflow(other),
        }
    }
}

/// The schema must be one this subset enforces, its properties placeholders of the SQL.
fn check(sql: &str, parameter_schema: &Value) -> Result<(), SchemaError> {
    schema::check_schema(parameter_schema, "parameters_schema")?;
    if let Some(props) = parameter_schema
        .get("properties")
        .and_then(Value::as_object)
        && let Some(name) = props.keys().find(|k| !crate::sql::is_known_name(sql, k))
    {
        return Err(SchemaError {
            path: format!("parameters_schema.properties.{name}"),
            message: format!("`{name}` is not a placeholder of sql_template"),
        });
    }
    Ok(())
}

pub async fn create(
    db: &DatabaseConnection,
    user: UserId,
    new: NewTemplate,
) -> Result<TemplateRow, TemplateError> {
    check(&new.sql_query, &new.parameter_schema)?;
    let sql = format!(
        "INSERT INTO query_templates (id, user_id, name, description, category, tags, sql_query, \
           parameter_schema, is_public) \
         VALUES ($1, $2, $3, $4, $5, ARRAY(SELECT jsonb_array_elements_text($6::jsonb)), $7, $8, $9) \
         RETURNING {COLUMNS}"
    );
    TemplateRow::find_by_statement(stmt(
        &sql,
        [
            Uuid::now_v7().into(),
            user.into(),
            new.name.into(),
            new.description.into(),
            new.category.into(),
            json!(new.tags).into(),
            new.sql_query.into(),
            new.parameter_schema.into(),
            new.is_public.into(),
        ],
    ))
    .one(db)
    .await?
    .ok_or(TemplateError::NotFound)
}

/// A page of the templates the user sees, newest first, after `after`.
pub async fn list(
    db: &DatabaseConnection,
    user: UserId,
    filter: &TemplateFilter,
    after: Option<(DateTime<Utc>, TemplateId)>,
    limit: u64,
) -> Result<Vec<TemplateRow>, DbErr> {
    let (at, id) = after.map_or((None, None), |(a, i)| (Some(a), Some(i)));
    let sql = format!(
        "SELECT {COLUMNS} FROM query_templates WHERE {VISIBLE} \
           AND ($2::text IS NULL OR category = $2) \
           AND ($3::text IS NULL OR tags @> ARRAY[$3::text]) \
           AND ($4::timestamptz IS NULL OR (created_at, id) < ($4, $5)) \
         ORDER BY created_at DESC, id DESC LIMIT $6"
    );
    TemplateRow::find_by_statement(stmt(
        &sql,
        [
            user.into(),
            filter.category.clone().into(),
            filter.tag.clone().into(),
            at.into(),
            id.into(),
            (limit as i64).into(),
        ],
    ))
    .all(db)
    .await
}

/// One template the user sees.
pub async fn get(
    db: &impl ConnectionTrait,
    user: UserId,
    id: TemplateId,
) -> Result<TemplateRow, TemplateError> {
    let sql = format!("SELECT {COLUMNS} FROM query_templates WHERE id = $2 AND {VISIBLE}");
    TemplateRow::find_by_statement(stmt(&sql, [user.into(), id.into()]))
        .one(db)
        .await?
        .ok_or(TemplateError::NotFound)
}

/// Changes one of the user's own templates.
pub async fn update(
    db: &DatabaseConnection,
    user: UserId,
    id: TemplateId,
    patch: TemplatePatch,
) -> Result<TemplateRow, TemplateError> {
    let txn = db.begin().await?;
    let sql =
        format!("SELECT {COLUMNS} FROM query_templates WHERE id = $2 AND user_id = $1 FOR UPDATE");
    let cur = TemplateRow::find_by_statement(stmt(&sql, [user.into(), id.into()]))
        .one(&txn)
        .await?
        .ok_or(TemplateError::NotFound)?;
    let sql_query = patch.sql_query.unwrap_or_else(|| cur.sql_query.clone());
    let parameter_schema = patch
        .parameter_schema
        .unwrap_or_else(|| cur.parameter_schema.clone());
    check(&sql_query, &parameter_schema)?;
    let tags = patch.tags.unwrap_or_else(|| cur.tag_list());
    let sql = format!(
        "UPDATE query_templates SET name = $3, description = $4, category = $5, \
           tags = ARRAY(SELECT jsonb_array_elements_text($6::jsonb)), sql_query = $7, parameter_schema = $8, \
           is_public = $9, updated_at = now() \
         WHERE id = $2 AND user_id = $1 RETURNING {COLUMNS}"
    );
    let row = TemplateRow::find_by_statement(stmt(
        &sql,
        [
            user.into(),
            id.into(),
            patch.name.unwrap_or(cur.name).into(),
            patch.description.unwrap_or(cur.description).into(),
            patch.category.unwrap_or(cur.category).into(),
            json!(tags).into(),
            sql_query.into(),
            parameter_schema.into(),
            patch.is_public.unwrap_or(cur.is_public).into(),
        ],
    ))
    .one(&txn)
    .await?
    .ok_or(TemplateError::NotFound)?;
    txn.commit().await?;
    Ok(row)
}

/// Deletes one of the user's own templates (workflows made from it keep their SQL).
pub async fn delete(
    db: &DatabaseConnection,
    user: UserId,
    id: TemplateId,
) -> Result<(), TemplateError> {
    let done = db
        .execute_raw(stmt(
            "DELETE FROM query_templates WHERE id = $2 AND user_id = $1",
            [user.into(), id.into()],
        ))
        .await?;
    if done.rows_affected() == 0 {
        return Err(TemplateError::NotFound);
    }
    Ok(())
}

/// Makes a workflow from a template the user sees, on one of the user's instances: the
/// parameters given over the schema's defaults, checked against the schema (a refusal
/// names `parameters.<name>`), become the workflow's defaults; the template's usage
/// count goes up by one in the same transaction.
pub async fn use_template(
    db: &DatabaseConnection,
    user: UserId,
    id: TemplateId,
    uses: TemplateUse,
) -> Result<Workflow, TemplateError> {
    let TemplateUse {
        instance_id,
        name,
        parameters: given,
    } = uses;
    let txn = db.begin().await?;
    let t = get(&txn, user, id).await?;
    let mut parameters = schema::defaults(&t.parameter_schema);
    parameters.extend(given);
    let parameters = Value::Object(parameters);
    schema::validate(&t.parameter_schema, &parameters, "parameters")?;
    if let Some(unknown) = parameters
        .as_object()
        .and_then(|p| crate::workflow::check_defaults(&t.sql_query, p))
    {
        return Err(SchemaError {
            path: format!("parameters.{unknown}"),
            message: format!("`{unknown}` is not a placeholder of the template's SQL"),
        }
        .into());
    }
    let new = NewWorkflow {
        instance_id,
        name,
        description: t.description.clone(),
        sql_query: t.sql_query.clone(),
        parameters,
        tags: t.tag_list(),
        template_id: Some(t.id),
    };
    let workflow = create_workflow(&txn, user, new)
        .await
        .map_err(|e| match e {
            RepoError::NotFound => TemplateError::InstanceNotFound,
            other => other.into(),
        })?;
    txn.execute_raw(stmt(
        "UPDATE query_templates SET usage_count = usage_count + 1 WHERE id = $1",
        [id.into()],
    ))
    .await?;
    txn.commit().await?;
    Ok(workflow)
}
