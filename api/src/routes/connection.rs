//! `/amazon/connection`: the user's Login-with-Amazon refresh token, exchanged with LWA
//! before it is stored (encrypted). Tokens are never returned or logged.

use super::ApiTags;
use crate::auth::BearerAuth;
use crate::error::status::{AUTH, BODY, E404, E503};
use crate::error::{ApiError, Errors};
use crate::input::{In, Nullable, Opaque};
use crate::state::AppState;
use chrono::{DateTime, Utc};
use common::amc::LwaError;
use common::ids::{ExecutionId, Region, UserId};
use common::jobs::{StepJobV1, step_queue};
use common::repo::connections::{self, ConnectionStatus, EncryptedTokens};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use std::sync::Arc;

/// `{refresh_token}`: an LWA refresh token (`Atzr|…`). Never printed.
#[derive(Debug, Object)]
pub struct ConnectRequest {
    pub refresh_token: In<Opaque<1, 2048>>,
}

/// The connection's state (never its tokens).
#[derive(Debug, Object)]
pub struct ConnectionBody {
    /// `active` or `reauth_required`.
    pub status: String,
    /// Why re-authorisation is required, if it is.
    pub last_error: Nullable<String>,
    pub access_token_expires_at: Nullable<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<ConnectionStatus> for ConnectionBody {
    fn from(c: ConnectionStatus) -> Self {
        Self {
            status: c.status,
            last_error: c.last_error.into(),
            access_token_expires_at: c.access_token_expires_at.into(),
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

#[derive(ApiResponse)]
pub enum ConnectionResponse {
    /// The connection.
    #[oai(status = 200)]
    Ok(Json<ConnectionBody>),
}

/// Amazon connection endpoints.
pub struct ConnectionApi {
    pub state: Arc<AppState>,
}

#[OpenApi(tag = "ApiTags::Amazon")]
impl ConnectionApi {
    /// Connect (or reconnect) Amazon with an LWA refresh token; LWA must accept it first.
    #[oai(
        path = "/amazon/connection",
        method = "put",
        operation_id = "putAmazonConnection"
    )]
    async fn put(
        &self,
        auth: BearerAuth,
        body: Json<ConnectRequest>,
    ) -> Result<ConnectionResponse, Errors<{ AUTH | BODY | E503 }>> {
        let refresh_token = body
            .0
            .refresh_token
            .get("refresh_token")?
            .trim()
            .to_string();
        let grant = self
            .state
            .lwa
            .refresh(Region::NA, &refresh_token)
            .await
            .map_err(lwa_error)?;
        let expires_in =
            chrono::Duration::from_std(grant.expires_in).map_err(ApiError::internal)?;
        let stored_refresh = grant.refresh_token.as_deref().unwrap_or(&refresh_token);
        let tokens = EncryptedTokens {
            refresh_token_enc: self.state.cipher.encrypt(stored_refresh.as_bytes()),
            access_token_enc: self.state.cipher.encrypt(grant.access_token.as_bytes()),
            access_token_expires_at: Utc::now() + expires_in,
        };
        let before = connections::find_connection(&self.state.db, auth.0.user_id).await?;
        let conn = connections::upsert_connection(&self.state.db, auth.0.user_id, tokens).await?;
        tracing::info!(user.id = %auth.0.user_id, "amazon connection stored");
        if before.is_some_and(|b| b.status == "reauth_required") {
            self.resume_runs(auth.0.user_id).await?;
        }
        Ok(ConnectionResponse::Ok(Json(conn.into())))
    }

    /// The Amazon connection's status.
    #[oai(
        path = "/amazon/connection",
        method = "get",
        operation_id = "getAmazonConnection"
    )]
    async fn get(&self, auth: BearerAuth) -> Result<ConnectionResponse, Errors<{ AUTH | E404 }>> {
        let conn = connections::find_connection(&self.state.db, auth.0.user_id)
            .await?
            .ok_or_else(|| ApiError::not_found("amazon connection"))?;
        Ok(ConnectionResponse::Ok(Json(conn.into())))
    }
}

impl ConnectionApi {
    /// Runs already at AMC waited (at `AMP_POLL_MAX`) while the connection needed
    /// re-authorising: their next check is brought forward to now and enqueued. A lost
    /// push is harmless: the row is now overdue and the reconciler re-enqueues it.
    async fn resume_runs(&self, user: UserId) -> Result<(), ApiError> {
        let resumed = connections::resume_after_reauth(&self.state.db, user)
            .await
            .map_err(ApiError::internal)?;
        for (id, status, due) in resumed {
            let Some(queue_name) = step_queue(&status) else {
                continue;
            };
            let job = StepJobV1 {
                execution_id: ExecutionId(id),
                due: Some(due),
            };
            if let Err(e) = self.state.producer.push(queue_name, &job).await {
                tracing::warn!(execution.id = %id, error = %e, "could not enqueue the resumed check; the reconciler will");
            }
        }
        Ok(())
    }
}

/// LWA's rejection of the token → 422 with its words; our own problems → 5xx.
fn lwa_error(e: LwaError) -> ApiError {
    match e {
        LwaError::InvalidGrant(description) => ApiError::unprocessable(description),
        LwaError::Transient(m) => {
            tracing::warn!(error = %m, "login with amazon unavailable");
            ApiError::Unavailable("Login with Amazon is unavailable; try again later".into())
        }
        other => ApiError::internal(anyhow::anyhow!("login with amazon token exchange: {other}")),
    }
}
