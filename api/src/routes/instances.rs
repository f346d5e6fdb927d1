//! `/instances`: AMC instances under the user's accounts, with their caps.

use super::ApiTags;
use super::accounts::not_found;
use crate::auth::BearerAuth;
use crate::error::status::{AUTH, BODY, E404, E409, E422};
use crate::error::{ApiError, Errors};
use crate::input::{Id, Ident, In, Int, Name, Nullable, TimeZone, opt};
use crate::page;
use crate::params::{Page, Params};
use crate::state::AppState;
use chrono::{DateTime, Utc};
use common::ids::{AccountId, InstanceId};
use common::repo::RepoError;
use common::repo::instances::{self, Instance, InstanceCaps, NewInstance};
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::types::MaybeUndefined;
use poem_openapi::{ApiResponse, Object, OpenApi};
use std::sync::Arc;
use uuid::Uuid;

/// A new instance.
#[derive(Debug, Object)]
pub struct CreateInstance {
    pub name: In<Name<200>>,
    /// One of the user's accounts.
    pub account_id: In<Id>,
    /// AMC's instance id (e.g. `amcabc123`).
    pub amc_instance_id: In<Ident<100>>,
    /// Executions of this instance at AMC at once (default 10).
    pub max_concurrent_executions: Option<In<Int<1, 10000>>>,
    /// Executions started per local day of `time_zone` (none: unlimited).
    pub daily_execution_quota: Option<In<Int<1, 10000>>>,
    /// IANA zone of the daily quota's day (default `UTC`).
    pub time_zone: Option<In<TimeZone>>,
    /// Slots collection windows never take, kept for other runs (default min(2, cap − 1));
    /// less than `max_concurrent_executions`.
    pub collection_reserve: Option<In<Int<0, 9999>>>,
}

/// A change of caps; an omitted field stays, `daily_execution_quota: null` removes the
/// quota, `collection_reserve: null` restores the default reserve.
#[derive(Debug, Object)]
pub struct UpdateInstance {
    pub max_concurrent_executions: Option<In<Int<1, 10000>>>,
    pub daily_execution_quota: MaybeUndefined<In<Int<1, 10000>>>,
    pub time_zone: Option<In<TimeZone>>,
    /// `null` goes back to the default, min(2, cap − 1).
    pub collection_reserve: MaybeUndefined<In<Int<0, 9999>>>,
}

/// An instance.
#[derive(Debug, Object)]
pub struct InstanceBody {
    pub id: Uuid,
    pub account_id: Uuid,
    pub name: String,
    pub amc_instance_id: String,
    pub max_concurrent_executions: i32,
    pub daily_execution_quota: Nullable<i32>,
    pub time_zone: String,
    /// Slots collection windows never take (default min(2, cap − 1)).
    pub collection_reserve: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Instance> for InstanceBody {
    fn from(i: Instance) -> Self {
        Self {
            id: i.id.0,
            account_id: i.account_id.0,
            name: i.name,
            amc_instance_id: i.amc_instance_id.0,
            max_concurrent_executions: i.max_concurrent_executions,
            daily_execution_quota: i.daily_execution_quota.into(),
            time_zone: i.time_zone,
            collection_reserve: i.collection_reserve,
            created_at: i.created_at,
            updated_at: i.updated_at,
        }
    }
}

#[derive(ApiResponse)]
pub enum CreateInstanceResponse {
    /// The instance was created.
    #[oai(status = 201)]
    Created(Json<InstanceBody>),
}

#[derive(ApiResponse)]
pub enum InstanceResponse {
    /// The instance.
    #[oai(status = 200)]
    Ok(Json<InstanceBody>),
}

#[derive(ApiResponse)]
pub enum InstanceListResponse {
    /// The user's instances, newest first.
    #[oai(status = 200)]
    Ok(Json<InstanceList>),
}

/// A page of the user's instances, newest first.
#[derive(Debug, Object)]
pub struct InstanceList {
    pub items: Vec<InstanceBody>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Nullable<String>,
}

/// Instance endpoints.
pub struct InstancesApi {
    pub state: Arc<AppState>,
}

#[OpenApi(tag = "ApiTags::Instances")]
impl InstancesApi {
    /// Add an AMC instance to one of the user's accounts.
    #[oai(path = "/instances", method = "post", operation_id = "createInstance")]
    async fn create(
        &self,
        auth: BearerAuth,
        body: Json<CreateInstance>,
    ) -> Result<CreateInstanceResponse, Errors<{ AUTH | BODY | E404 | E409 }>> {
        let b = body.0;
        let cap = opt(b.max_concurrent_executions, "max_concurrent_executions")?.unwrap_or(10);
        let collection_reserve = opt(b.collection_reserve, "collection_reserve")?;
        instances::check_reserve(cap, collection_reserve)
            .map_err(|m| ApiError::field("collection_reserve", m))?;
        let new = NewInstance {
            name: b.name.get("name")?,
            account_id: AccountId(b.account_id.get("account_id")?),
            amc_instance_id: common::ids::AmcInstanceId(b.amc_instance_id.get("amc_instance_id")?),
            max_concurrent_executions: cap,
            collection_reserve,
            daily_execution_quota: opt(b.daily_execution_quota, "daily_execution_quota")?,
            time_zone: opt(b.time_zone, "time_zone")?
                .unwrap_or(chrono_tz::UTC)
                .name()
                .to_string(),
        };
        let instance = instances::create_instance(&self.state.db, auth.0.user_id, new)
            .await
            .map_err(|e| match e {
                RepoError::Conflict(_) => ApiError::conflict(
                    "this account already has an instance with this amc_instance_id",
                ),
                other => not_found(other, "account"),
            })?;
        Ok(CreateInstanceResponse::Created(Json(instance.into())))
    }

    /// The user's instances, newest first (`cursor`, `limit` ≤ 500, default 50).
    #[oai(path = "/instances", method = "get", operation_id = "listInstances")]
    async fn list(
        &self,
        auth: BearerAuth,
        paging: Params<Page<500>>,
    ) -> Result<InstanceListResponse, Errors<{ AUTH | E422 }>> {
        let user = auth.0.user_id;
        let db = &self.state.db;
        let (rows, next) = page::keyset(
            &self.state.cursors,
            &page::scope(b"instances", user.0),
            (paging.0.cursor, paging.0.limit),
            |after, limit| instances::list_instances(db, user, after, limit),
        )
        .await?;
        Ok(InstanceListResponse::Ok(Json(InstanceList {
            items: rows.into_iter().map(Into::into).collect(),
            next_cursor: next.into(),
        })))
    }

    /// One instance.
    #[oai(path = "/instances/:id", method = "get", operation_id = "getInstance")]
    async fn get(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
    ) -> Result<InstanceResponse, Errors<{ AUTH | E404 | E422 }>> {
        let instance = instances::get_instance(&self.state.db, auth.0.user_id, InstanceId(id.0))
            .await
            .map_err(|e| not_found(e, "instance"))?;
        Ok(InstanceResponse::Ok(Json(instance.into())))
    }

    /// Change an instance's caps (concurrency, daily quota, quota time zone, collection
    /// reserve). A reserve must stay below the cap.
    #[oai(
        path = "/instances/:id",
        method = "patch",
        operation_id = "updateInstance"
    )]
    async fn update(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
        body: Json<UpdateInstance>,
    ) -> Result<InstanceResponse, Errors<{ AUTH | BODY | E404 }>> {
        let b = body.0;
        let caps = InstanceCaps {
            max_concurrent_executions: opt(
                b.max_concurrent_executions,
                "max_concurrent_executions",
            )?,
            daily_execution_quota: match b.daily_execution_quota {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => Some(None),
                MaybeUndefined::Value(q) => Some(Some(q.get("daily_execution_quota")?)),
            },
            time_zone: opt(b.time_zone, "time_zone")?.map(|tz| tz.name().to_string()),
            collection_reserve: match b.collection_reserve {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => Some(None),
                MaybeUndefined::Value(r) => Some(Some(r.get("collection_reserve")?)),
            },
        };
        let (user, id) = (auth.0.user_id, InstanceId(id.0));
        let current = instances::get_instance(&self.state.db, user, id)
            .await
            .map_err(|e| not_found(e, "instance"))?;
        let cap = caps
            .max_concurrent_executions
            .unwrap_or(current.max_concurrent_executions);
        if let Some(Some(r)) = caps.collection_reserve {
            instances::check_reserve(cap, Some(r))
                .map_err(|m| ApiError::field("collection_reserve", m))?;
        }
        let instance = instances::update_instance_caps(&self.state.db, user, id, caps)
            .await
            .map_err(|e| match e {
                // A cap lowered to or below a reserve set earlier (or a concurrent change).
                RepoError::Check(_) => ApiError::field(
                    "max_concurrent_executions",
                    "must stay above the instance's collection_reserve; lower the reserve first",
                ),
                other => not_found(other, "instance"),
            })?;
        Ok(InstanceResponse::Ok(Json(instance.into())))
    }
}
