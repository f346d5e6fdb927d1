//! `/amazon/connection`: the user's Login-with-Amazon refresh token, exchanged with LWA
//! before it is stored (encrypted). Tokens are never returned or logged.

use super::ApiTags;
use crate::auth::BearerAuth;
use crate::error::status::{AUTH, BODY, E404, E503};
use crate::error::{ApiError, Errors};
use crate::input::{In, Nullable, Opaque};
use crate::state::AppState;
use chrono::{DateTime, Utc};
use common::connection::{self, ConnectError, Connection, ConnectionStatus, Connector};
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
    pub status: ConnectionStatus,
    /// Why re-authorisation is required, if it is.
    pub last_error: Nullable<String>,
    pub access_token_expires_at: Nullable<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Connection> for ConnectionBody {
    fn from(c: Connection) -> Self {
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
    /// Runs that waited at AMC while the connection needed re-authorising resume at once.
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
        let refresh_token = body.0.refresh_token.get("refresh_token")?;
        let st = &self.state;
        let connector = Connector {
            db: &st.db,
            cipher: &st.cipher,
            lwa: &st.lwa,
            producer: &st.producer,
        };
        let connected = connection::connect(&connector, auth.0.user_id, refresh_token.trim())
            .await
            .map_err(connect_error)?;
        Ok(ConnectionResponse::Ok(Json(connected.connection.into())))
    }

    /// The Amazon connection's status.
    #[oai(
        path = "/amazon/connection",
        method = "get",
        operation_id = "getAmazonConnection"
    )]
    async fn get(&self, auth: BearerAuth) -> Result<ConnectionResponse, Errors<{ AUTH | E404 }>> {
        let conn = connection::find_connection(&self.state.db, auth.0.user_id)
            .await?
            .ok_or_else(|| ApiError::not_found("amazon connection"))?;
        Ok(ConnectionResponse::Ok(Json(conn.into())))
    }
}

/// LWA's rejection of the token → 422 with its words; LWA down → 503; ours → 500.
fn connect_error(e: ConnectError) -> ApiError {
    match e {
        ConnectError::Refused(description) => ApiError::unprocessable(description),
        ConnectError::Unavailable(m) => {
            tracing::warn!(error = %m, "login with amazon unavailable");
            ApiError::Unavailable("Login with Amazon is unavailable; try again later".into())
        }
        ConnectError::Repo(e) => e.into(),
        other => ApiError::internal(other),
    }
}
