//! `/accounts`: the user's AMC accounts (advertiser entity, marketplace, region).

use super::ApiTags;
use crate::auth::BearerAuth;
use crate::error::status::{AUTH, BODY, E404, E409, E422};
use crate::error::{ApiError, Errors};
use crate::input::{Ident, In, Int, Name, Nullable, RegionKind, opt};
use crate::page;
use crate::params::{Page, Params};
use crate::state::AppState;
use chrono::{DateTime, Utc};
use common::ids::AccountId;
use common::repo::RepoError;
use common::repo::accounts::{self, Account, NewAccount};
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use std::sync::Arc;
use uuid::Uuid;

/// A new account.
#[derive(Debug, Object)]
pub struct CreateAccount {
    pub name: In<Name<200>>,
    /// The advertiser's entity id (`Amazon-Advertising-API-AdvertiserId`).
    pub entity_id: In<Ident<100>>,
    /// e.g. `ATVPDKIKX0DER`.
    pub marketplace_id: In<Ident<100>>,
    /// `NA`, `EU` or `FE`.
    pub region: In<RegionKind>,
    /// Executions of this account running at AMC at once (default 200).
    pub max_concurrent_executions: Option<In<Int<1, 10000>>>,
}

/// An account.
#[derive(Debug, Object)]
pub struct AccountBody {
    pub id: Uuid,
    pub name: String,
    pub entity_id: String,
    pub marketplace_id: String,
    pub region: common::ids::Region,
    pub max_concurrent_executions: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Account> for AccountBody {
    fn from(a: Account) -> Self {
        Self {
            id: a.id.0,
            name: a.name,
            entity_id: a.entity_id.0,
            marketplace_id: a.marketplace_id.0,
            region: a.region,
            max_concurrent_executions: a.max_concurrent_executions,
            created_at: a.created_at,
            updated_at: a.updated_at,
        }
    }
}

#[derive(ApiResponse)]
pub enum CreateAccountResponse {
    /// The account was created.
    #[oai(status = 201)]
    Created(Json<AccountBody>),
}

#[derive(ApiResponse)]
pub enum AccountResponse {
    /// The account.
    #[oai(status = 200)]
    Ok(Json<AccountBody>),
}

#[derive(ApiResponse)]
pub enum AccountListResponse {
    /// The user's accounts, newest first.
    #[oai(status = 200)]
    Ok(Json<AccountList>),
}

/// A page of the user's accounts, newest first.
#[derive(Debug, Object)]
pub struct AccountList {
    pub items: Vec<AccountBody>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Nullable<String>,
}

/// Account endpoints.
pub struct AccountsApi {
    pub state: Arc<AppState>,
}

#[OpenApi(tag = "ApiTags::Accounts")]
impl AccountsApi {
    /// Add an AMC account.
    #[oai(path = "/accounts", method = "post", operation_id = "createAccount")]
    async fn create(
        &self,
        auth: BearerAuth,
        body: Json<CreateAccount>,
    ) -> Result<CreateAccountResponse, Errors<{ AUTH | BODY | E409 }>> {
        let b = body.0;
        let new = NewAccount {
            name: b.name.get("name")?,
            entity_id: common::ids::EntityId(b.entity_id.get("entity_id")?),
            marketplace_id: common::ids::MarketplaceId(b.marketplace_id.get("marketplace_id")?),
            region: b.region.get("region")?,
            max_concurrent_executions: opt(
                b.max_concurrent_executions,
                "max_concurrent_executions",
            )?,
        };
        let account = accounts::create_account(&self.state.db, auth.0.user_id, new)
            .await
            .map_err(|e| match e {
                RepoError::Conflict(_) => ApiError::conflict(
                    "an account with this entity_id and marketplace_id already exists",
                ),
                other => other.into(),
            })?;
        Ok(CreateAccountResponse::Created(Json(account.into())))
    }

    /// The user's accounts, newest first (`cursor`, `limit` ≤ 500, default 50).
    #[oai(path = "/accounts", method = "get", operation_id = "listAccounts")]
    async fn list(
        &self,
        auth: BearerAuth,
        paging: Params<Page<500>>,
    ) -> Result<AccountListResponse, Errors<{ AUTH | E422 }>> {
        let user = auth.0.user_id;
        let db = &self.state.db;
        let (rows, next) = page::keyset(
            &self.state.cursors,
            &page::scope(b"accounts", user.0),
            (paging.0.cursor, paging.0.limit),
            |after, limit| accounts::list_accounts(db, user, after, limit),
        )
        .await?;
        Ok(AccountListResponse::Ok(Json(AccountList {
            items: rows.into_iter().map(Into::into).collect(),
            next_cursor: next.into(),
        })))
    }

    /// One account.
    #[oai(path = "/accounts/:id", method = "get", operation_id = "getAccount")]
    async fn get(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
    ) -> Result<AccountResponse, Errors<{ AUTH | E404 | E422 }>> {
        let account = accounts::get_account(&self.state.db, auth.0.user_id, AccountId(id.0))
            .await
            .map_err(|e| not_found(e, "account"))?;
        Ok(AccountResponse::Ok(Json(account.into())))
    }
}

/// A repository error with a not-found naming the resource.
pub(crate) fn not_found(e: RepoError, what: &str) -> ApiError {
    match e {
        RepoError::NotFound => ApiError::not_found(what),
        other => other.into(),
    }
}
