//! AMC instances of a user's accounts, with their concurrency caps and daily quota.

use super::{RepoError, stmt};
use crate::ids::{AccountId, AmcInstanceId, InstanceId, UserId};
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, FromQueryResult};

/// An instance row.
#[derive(Debug, Clone, FromQueryResult)]
pub struct Instance {
    pub id: InstanceId,
    pub account_id: AccountId,
    pub name: String,
    pub amc_instance_id: AmcInstanceId,
    pub max_concurrent_executions: i32,
    pub daily_execution_quota: Option<i32>,
    pub time_zone: String,
    /// Slots collection windows never take (the default, min(2, cap − 1), when unset).
    pub collection_reserve: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What a new instance needs (validated by the caller).
#[derive(Debug, Clone)]
pub struct NewInstance {
    pub account_id: AccountId,
    pub name: String,
    pub amc_instance_id: AmcInstanceId,
    pub max_concurrent_executions: i32,
    pub daily_execution_quota: Option<i32>,
    pub time_zone: String,
    /// `None`: the default, min(2, cap − 1).
    pub collection_reserve: Option<i32>,
}

/// A change of caps; `None` leaves a field as it is. `daily_execution_quota:
/// Some(None)` removes the quota.
#[derive(Debug, Clone, Default)]
pub struct InstanceCaps {
    pub max_concurrent_executions: Option<i32>,
    pub daily_execution_quota: Option<Option<i32>>,
    pub time_zone: Option<String>,
    /// `Some(None)` goes back to the default reserve.
    pub collection_reserve: Option<Option<i32>>,
}

const COLUMNS: &str = "id, account_id, name, amc_instance_id, max_concurrent_executions, daily_execution_quota, time_zone, \
    coalesce(collection_reserve, least(2, max_concurrent_executions - 1)) AS collection_reserve, created_at, updated_at";

/// Checks a collection reserve against the cap it belongs to (the database checks it too).
pub fn check_reserve(cap: i32, reserve: Option<i32>) -> Result<(), String> {
    match reserve {
        Some(r) if r >= cap => Err(format!(
            "must be less than max_concurrent_executions ({cap}), or collection windows could never run"
        )),
        _ => Ok(()),
    }
}

/// Creates an instance under one of the user's accounts; an account of another user (or
/// none) → [`RepoError::NotFound`]; the same AMC instance twice in an account → conflict.
pub async fn create_instance(
    db: &impl ConnectionTrait,
    user_id: UserId,
    new: NewInstance,
) -> Result<Instance, RepoError> {
    let sql = format!(
        "INSERT INTO amc_instances (id, user_id, account_id, name, amc_instance_id, max_concurrent_executions, daily_execution_quota, time_zone, collection_reserve)
         SELECT $1, a.user_id, a.id, $4, $5, $6, $7, $8, $9 FROM amc_accounts a WHERE a.id = $3 AND a.user_id = $2
         RETURNING {COLUMNS}"
    );
    let values = [
        InstanceId::new().0.into(),
        user_id.into(),
        new.account_id.into(),
        new.name.into(),
        new.amc_instance_id.into(),
        new.max_concurrent_executions.into(),
        new.daily_execution_quota.into(),
        new.time_zone.into(),
        new.collection_reserve.into(),
    ];
    Instance::find_by_statement(stmt(&sql, values))
        .one(db)
        .await?
        .ok_or(RepoError::NotFound)
}

/// A page of the user's instances, newest first, after `after` (`limit` rows at most).
pub async fn list_instances(
    db: &impl ConnectionTrait,
    user_id: UserId,
    after: super::After,
    limit: u64,
) -> Result<Vec<Instance>, RepoError> {
    let page = super::page_of_user(COLUMNS, "amc_instances", user_id, after, limit);
    Ok(Instance::find_by_statement(page).all(db).await?)
}

/// One of the user's instances.
pub async fn get_instance(
    db: &impl ConnectionTrait,
    user_id: UserId,
    id: InstanceId,
) -> Result<Instance, RepoError> {
    let sql = format!("SELECT {COLUMNS} FROM amc_instances WHERE id = $1 AND user_id = $2");
    Instance::find_by_statement(stmt(&sql, [id.into(), user_id.into()]))
        .one(db)
        .await?
        .ok_or(RepoError::NotFound)
}

/// Changes the caps of one of the user's instances.
pub async fn update_instance_caps(
    db: &impl ConnectionTrait,
    user_id: UserId,
    id: InstanceId,
    caps: InstanceCaps,
) -> Result<Instance, RepoError> {
    let (set_quota, quota) = match caps.daily_execution_quota {
        Some(q) => (true, q),
        None => (false, None),
    };
    let (set_reserve, reserve) = match caps.collection_reserve {
        Some(r) => (true, r),
        None => (false, None),
    };
    let sql = format!(
        "UPDATE amc_instances SET
           max_concurrent_executions = COALESCE($3, max_concurrent_executions),
           daily_execution_quota = CASE WHEN $4 THEN $5 ELSE daily_execution_quota END,
           time_zone = COALESCE($6, time_zone),
           collection_reserve = CASE WHEN $7 THEN $8 ELSE collection_reserve END,
           updated_at = now()
         WHERE id = $1 AND user_id = $2 RETURNING {COLUMNS}"
    );
    let values = [
        id.into(),
        user_id.into(),
        caps.max_concurrent_executions.into(),
        set_quota.into(),
        quota.into(),
        caps.time_zone.into(),
        set_reserve.into(),
        reserve.into(),
    ];
    Instance::find_by_statement(stmt(&sql, values))
        .one(db)
        .await?
        .ok_or(RepoError::NotFound)
}
