//! `/query-templates`: the library of reusable AMC SQL. A user reads and uses their own
//! templates and every public one; only the owner changes or deletes a template (to
//! anyone else it is not found among theirs: 404).

use super::ApiTags;
use super::workflows::WorkflowBody;
use crate::auth::BearerAuth;
use crate::error::status::{AUTH, BODY, E404, E422};
use crate::error::{ApiError, Errors};
use crate::input::{Bool, Clearable, Id, In, JsonObject, LongText, Name, Nullable, Tags, opt};
use crate::page;
use crate::params::{Page, Params};
use crate::state::AppState;
use chrono::{DateTime, Utc};
use common::ids::{InstanceId, TemplateId};
use common::template::{
    self as tpl, NewTemplate, TemplateError, TemplateFilter, TemplatePatch, TemplateRow,
    TemplateUse,
};
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde_json::Value;
use std::sync::Arc;
use uuid::Uuid;

/// A new template.
#[derive(Debug, Object)]
pub struct CreateTemplate {
    pub name: In<Name<200>>,
    pub description: Option<In<LongText<2000>>>,
    /// A category to group and filter by (e.g. `attribution`).
    pub category: Option<In<Name<100>>>,
    pub tags: Option<In<Tags>>,
    /// AMC SQL with `{{name}}` placeholders. At most 100,000 characters.
    pub sql_template: In<LongText<100000>>,
    /// A JSON Schema of the parameters (an object schema; its properties must be
    /// placeholders). Supported keywords: `type`, `properties`, `required`,
    /// `additionalProperties`, `enum`, `minimum`, `maximum`, `minLength`, `maxLength`,
    /// `items`, `minItems`, `maxItems` and the annotations `title`, `description`,
    /// `default`, `examples`, `format`; any other is refused.
    pub parameters_schema: Option<In<JsonObject>>,
    /// Readable and usable by every user (default false).
    pub is_public: Option<In<Bool>>,
}

/// A change of one of the user's templates; absent fields keep their value.
#[derive(Debug, Object)]
pub struct UpdateTemplate {
    pub name: Option<In<Name<200>>>,
    /// `null` removes it.
    pub description: Clearable<LongText<2000>>,
    /// `null` removes it.
    pub category: Clearable<Name<100>>,
    pub tags: Option<In<Tags>>,
    pub sql_template: Option<In<LongText<100000>>>,
    pub parameters_schema: Option<In<JsonObject>>,
    pub is_public: Option<In<Bool>>,
}

/// A workflow to make from a template.
#[derive(Debug, Object)]
pub struct UseTemplate {
    /// One of the user's instances.
    pub instance_id: In<Id>,
    pub name: In<Name<200>>,
    /// Values of the template's parameters (over its schema's defaults), checked against
    /// its schema; they become the workflow's defaults.
    pub parameters: Option<In<JsonObject>>,
}

/// A query template.
#[derive(Debug, Object)]
pub struct TemplateBody {
    pub id: Uuid,
    pub name: String,
    pub description: Nullable<String>,
    pub category: Nullable<String>,
    pub tags: Vec<String>,
    pub sql_template: String,
    pub parameters_schema: Value,
    /// The placeholder names of `sql_template`, in order of first appearance.
    pub placeholders: Vec<String>,
    pub is_public: bool,
    /// Whether the caller owns it (and so may change or delete it).
    pub owned: bool,
    /// Workflows made from it.
    pub usage_count: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl TemplateBody {
    fn of(t: TemplateRow, user: common::ids::UserId) -> Self {
        Self {
            owned: t.user_id == Some(user),
            tags: t.tag_list(),
            placeholders: common::sql::placeholders(&t.sql_query),
            id: t.id.0,
            name: t.name,
            description: t.description.into(),
            category: t.category.into(),
            sql_template: t.sql_query,
            parameters_schema: t.parameter_schema,
            is_public: t.is_public,
            usage_count: t.usage_count,
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }
}

/// A page of the templates the user sees, newest first.
#[derive(Debug, Object)]
pub struct TemplateList {
    pub items: Vec<TemplateBody>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Nullable<String>,
}

#[derive(ApiResponse)]
pub enum CreatedTemplate {
    /// The template was created.
    #[oai(status = 201)]
    Created(Json<TemplateBody>),
}

#[derive(ApiResponse)]
pub enum TemplateResponse {
    /// The template.
    #[oai(status = 200)]
    Ok(Json<TemplateBody>),
}

#[derive(ApiResponse)]
pub enum TemplateListResponse {
    /// The user's own and the public templates, newest first.
    #[oai(status = 200)]
    Ok(Json<TemplateList>),
}

#[derive(ApiResponse)]
pub enum TemplateDeleted {
    /// Deleted; workflows made from it keep their SQL.
    #[oai(status = 204)]
    NoContent,
}

#[derive(ApiResponse)]
pub enum TemplateUsed {
    /// The workflow was created from the template.
    #[oai(status = 201)]
    Created(Json<WorkflowBody>),
}

/// Query template endpoints.
pub struct TemplatesApi {
    pub state: Arc<AppState>,
}

fn template_error(e: TemplateError) -> ApiError {
    match e {
        TemplateError::NotFound => ApiError::not_found("query template"),
        TemplateError::InstanceNotFound => ApiError::not_found("instance"),
        TemplateError::Schema(e) => ApiError::field(&e.path, e.message),
        TemplateError::Db(e) => ApiError::internal(e),
        e @ TemplateError::Workflow(_) => ApiError::internal(e),
    }
}

/// A list filter: a name of at most `max` characters, or a 422 naming `field`.
fn filter_value(v: Option<String>, field: &str, max: usize) -> Result<Option<String>, ApiError> {
    v.map(|v| common::text::name(&v, max).map_err(|e| ApiError::field(field, e.to_string())))
        .transpose()
}

fn non_blank(s: String) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_string())
}

#[OpenApi(tag = "ApiTags::QueryTemplates")]
impl TemplatesApi {
    /// Add a template to the library (private unless `is_public`).
    #[oai(
        path = "/query-templates",
        method = "post",
        operation_id = "createQueryTemplate"
    )]
    async fn create(
        &self,
        auth: BearerAuth,
        body: Json<CreateTemplate>,
    ) -> Result<CreatedTemplate, Errors<{ AUTH | BODY }>> {
        let user = auth.0.user_id;
        let b = body.0;
        let sql_query = b.sql_template.get("sql_template")?;
        if sql_query.trim().is_empty() {
            return Err(ApiError::field("sql_template", "must not be empty").into());
        }
        let new = NewTemplate {
            name: b.name.get("name")?,
            description: opt(b.description, "description")?.and_then(non_blank),
            category: opt(b.category, "category")?,
            tags: opt(b.tags, "tags")?.unwrap_or_default(),
            sql_query,
            parameter_schema: Value::Object(
                opt(b.parameters_schema, "parameters_schema")?.unwrap_or_default(),
            ),
            is_public: opt(b.is_public, "is_public")?.unwrap_or(false),
        };
        let row = tpl::create(&self.state.db, user, new)
            .await
            .map_err(template_error)?;
        Ok(CreatedTemplate::Created(Json(TemplateBody::of(row, user))))
    }

    /// The user's own and the public templates, newest first, optionally of one
    /// `category` or carrying one `tag` (`cursor`, `limit` ≤ 500, default 50).
    #[oai(
        path = "/query-templates",
        method = "get",
        operation_id = "listQueryTemplates"
    )]
    async fn list(
        &self,
        auth: BearerAuth,
        category: Query<Option<String>>,
        tag: Query<Option<String>>,
        paging: Params<Page<500>>,
    ) -> Result<TemplateListResponse, Errors<{ AUTH | E422 }>> {
        let user = auth.0.user_id;
        let filter = TemplateFilter {
            category: filter_value(category.0, "category", 100)?,
            tag: filter_value(tag.0, "tag", 50)?,
        };
        let scope = page::scope(b"query-templates", user.0);
        let after = page::open_key(&self.state.cursors, &scope, paging.0.cursor)?
            .map(|(at, id)| (at, TemplateId(id)));
        let limit = page::limit(paging.0.limit);
        let mut rows = tpl::list(&self.state.db, user, &filter, after, limit + 1)
            .await
            .map_err(ApiError::internal)?;
        let next = page::next_cursor(&mut rows, limit, |r| {
            self.state.cursors.sign_key(&scope, r.created_at, r.id.0)
        });
        Ok(TemplateListResponse::Ok(Json(TemplateList {
            items: rows
                .into_iter()
                .map(|t| TemplateBody::of(t, user))
                .collect(),
            next_cursor: next.into(),
        })))
    }

    /// One template (the user's own or a public one).
    #[oai(
        path = "/query-templates/:id",
        method = "get",
        operation_id = "getQueryTemplate"
    )]
    async fn get(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
    ) -> Result<TemplateResponse, Errors<{ AUTH | E404 | E422 }>> {
        let user = auth.0.user_id;
        let row = tpl::get(&self.state.db, user, TemplateId(id.0))
            .await
            .map_err(template_error)?;
        Ok(TemplateResponse::Ok(Json(TemplateBody::of(row, user))))
    }

    /// Change one of the user's own templates.
    #[oai(
        path = "/query-templates/:id",
        method = "patch",
        operation_id = "updateQueryTemplate"
    )]
    async fn update(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
        body: Json<UpdateTemplate>,
    ) -> Result<TemplateResponse, Errors<{ AUTH | BODY | E404 }>> {
        let user = auth.0.user_id;
        let b = body.0;
        let sql_query = opt(b.sql_template, "sql_template")?;
        if sql_query.as_ref().is_some_and(|s| s.trim().is_empty()) {
            return Err(ApiError::field("sql_template", "must not be empty").into());
        }
        let patch = TemplatePatch {
            name: opt(b.name, "name")?,
            description: b
                .description
                .get("description")?
                .map(|d| d.and_then(non_blank)),
            category: b.category.get("category")?,
            tags: opt(b.tags, "tags")?,
            sql_query,
            parameter_schema: opt(b.parameters_schema, "parameters_schema")?.map(Value::Object),
            is_public: opt(b.is_public, "is_public")?,
        };
        let row = tpl::update(&self.state.db, user, TemplateId(id.0), patch)
            .await
            .map_err(template_error)?;
        Ok(TemplateResponse::Ok(Json(TemplateBody::of(row, user))))
    }

    /// Delete one of the user's own templates.
    #[oai(
        path = "/query-templates/:id",
        method = "delete",
        operation_id = "deleteQueryTemplate"
    )]
    async fn delete(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
    ) -> Result<TemplateDeleted, Errors<{ AUTH | E404 | E422 }>> {
        tpl::delete(&self.state.db, auth.0.user_id, TemplateId(id.0))
            .await
            .map_err(template_error)?;
        Ok(TemplateDeleted::NoContent)
    }

    /// Make a workflow from a template on one of the user's instances; the template's
    /// usage count goes up by one.
    #[oai(
        path = "/query-templates/:id/workflows",
        method = "post",
        operation_id = "createWorkflowFromTemplate"
    )]
    async fn use_template(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
        body: Json<UseTemplate>,
    ) -> Result<TemplateUsed, Errors<{ AUTH | BODY | E404 }>> {
        let b = body.0;
        let uses = TemplateUse {
            instance_id: InstanceId(b.instance_id.get("instance_id")?),
            name: b.name.get("name")?,
            parameters: opt(b.parameters, "parameters")?.unwrap_or_default(),
        };
        let workflow = tpl::use_template(&self.state.db, auth.0.user_id, TemplateId(id.0), uses)
            .await
            .map_err(template_error)?;
        Ok(TemplateUsed::Created(Json(workflow.into())))
    }
}
