//! AMC accounts (advertiser entity + marketplace + region) of a user.

use super::{RepoError, stmt};
use crate::ids::{AccountId, EntityId, MarketplaceId, Region, UserId};
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, FromQueryResult};

/// An account row.
#[derive(Debug, Clone, FromQueryResult)]
pub struct Account {
    pub id: AccountId,
    pub name: String,
    pub entity_id: EntityId,
    pub marketplace_id: MarketplaceId,
    pub region: Region,
    pub max_concurrent_executions: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What a new account needs (validated by the caller).
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub name: String,
    pub entity_id: EntityId,
    pub marketplace_id: MarketplaceId,
    pub region: Region,
    pub max_concurrent_executions: Option<i32>,
}

const COLUMNS: &str = "id, name, entity_id, marketplace_id, region, max_concurrent_executions, created_at, updated_at";

/// Creates an account; the same (entity, marketplace) twice for one user → [`RepoError::Conflict`].
pub async fn create_account(
    db: &impl ConnectionTrait,
    user_id: UserId,
    new: NewAccount,
) -> Result<Account, RepoError> {
    let sql = format!(
        "INSERT INTO amc_accounts (id, user_id, name, entity_id, marketplace_id, region, max_concurrent_executions)
         VALUES ($1, $2, $3, $4, $5, $6, COALESCE($7, 200)) RETURNING {COLUMNS}"
    );
    let values = [
        AccountId::new().0.into(),
        user_id.into(),
        new.name.into(),
        new.entity_id.into(),
        new.marketplace_id.into(),
        new.region.into(),
        new.max_concurrent_executions.into(),
    ];
    Account::find_by_statement(stmt(&sql, values))
        .one(db)
        .await?
        .ok_or(RepoError::NotFound)
}

/// A page of the user's accounts, newest first, after `after` (`limit` rows at most).
pub async fn list_accounts(
    db: &impl ConnectionTrait,
    user_id: UserId,
    after: super::After,
    limit: u64,
) -> Result<Vec<Account>, RepoError> {
    let page = super::page_of_user(COLUMNS, "amc_accounts", user_id, after, limit);
    Ok(Account::find_by_statement(page).all(db).await?)
}

/// One of the user's accounts.
pub async fn get_account(
    db: &impl ConnectionTrait,
    user_id: UserId,
    id: AccountId,
) -> Result<Account, RepoError> {
    let sql = format!("SELECT {COLUMNS} FROM amc_accounts WHERE id = $1 AND user_id = $2");
    Account::find_by_statement(stmt(&sql, [id.into(), user_id.into()]))
        .one(db)
        .await?
        .ok_or(RepoError::NotFound)
}
