//! `/auth/*` and `/me`: registration, login, refresh-token rotation, the current user.

use super::ApiTags;
use crate::auth::{
    BearerAuth, REFRESH_TOKEN_TTL, hash_password, new_refresh_token, verify_password,
};
use crate::error::status::{AUTH, BODY, E401, E409, E429};
use crate::error::{ApiError, Errors};
use crate::input::{Email, In, Opaque};
use crate::limits::{Scope, client_ip};
use crate::state::AppState;
use common::ids::UserId;
use common::repo::{RepoError, refresh_tokens, users};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use std::sync::Arc;
use uuid::Uuid;

/// `{email, password}` of a new user.
#[derive(Debug, Object)]
pub struct Registration {
    pub email: In<Email>,
    /// 8 to 1,024 characters.
    pub password: In<Opaque<8, 1024>>,
}

/// `{email, password}` of a login.
#[derive(Debug, Object)]
pub struct Credentials {
    pub email: In<Email>,
    pub password: In<Opaque<1, 1024>>,
}

/// `{refresh_token}`.
#[derive(Debug, Object)]
pub struct RefreshRequest {
    pub refresh_token: In<Opaque<1, 512>>,
}

/// A registered user.
#[derive(Debug, Object)]
pub struct UserBody {
    pub id: Uuid,
    pub email: String,
}

/// The current user.
#[derive(Debug, Object)]
pub struct MeBody {
    pub id: Uuid,
    pub email: String,
    pub role: common::repo::users::Role,
}

/// An access + refresh token pair.
#[derive(Debug, Object)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds the access token is valid.
    pub expires_in: u64,
}

#[derive(ApiResponse)]
pub enum RegisterResponse {
    /// The user was created.
    #[oai(status = 201)]
    Created(Json<UserBody>),
}

#[derive(ApiResponse)]
pub enum TokenResponse {
    /// A new token pair.
    #[oai(status = 200)]
    Ok(Json<TokenPair>),
}

#[derive(ApiResponse)]
pub enum MeResponse {
    /// The authenticated user.
    #[oai(status = 200)]
    Ok(Json<MeBody>),
}

/// Auth endpoints.
pub struct AuthApi {
    pub state: Arc<AppState>,
}

#[OpenApi(tag = "ApiTags::Auth")]
impl AuthApi {
    /// Register a user. Registrations per client IP are limited like logins.
    #[oai(path = "/auth/register", method = "post", operation_id = "register")]
    async fn register(
        &self,
        req: &poem::Request,
        body: Json<Registration>,
    ) -> Result<RegisterResponse, Errors<{ BODY | E409 | E429 }>> {
        let b = body.0;
        let email = b.email.get("email")?;
        let password = b.password.get("password")?;
        let st = &self.state;
        let ip = client_ip(req, st.config.trust_forwarded_for);
        st.limiter
            .hit(Scope::RegisterIp, &ip, st.config.login_limit_ip)
            .await?;
        let hash = hash_password(&st.hashing, password).await?;
        let user = users::create_user(&self.state.db, &email, &hash)
            .await
            .map_err(|e| match e {
                RepoError::Conflict(_) => {
                    ApiError::conflict("a user with this email already exists")
                }
                other => other.into(),
            })?;
        tracing::info!(user.id = %user.id, "user registered");
        Ok(RegisterResponse::Created(Json(UserBody {
            id: user.id.0,
            email: user.email,
        })))
    }

    /// Log in with email and password. Attempts per client IP and failed attempts per
    /// email are limited (`AMP_LOGIN_RATE_LIMIT_IP`, `AMP_LOGIN_RATE_LIMIT_EMAIL`): over
    /// the limit → 429 with `Retry-After`.
    #[oai(path = "/auth/login", method = "post", operation_id = "login")]
    async fn login(
        &self,
        req: &poem::Request,
        body: Json<Credentials>,
    ) -> Result<TokenResponse, Errors<{ BODY | E401 | E429 }>> {
        let b = body.0;
        let email = b.email.get("email")?;
        let password = b.password.get("password")?;
        let st = &self.state;
        let ip = client_ip(req, st.config.trust_forwarded_for);
        st.limiter
            .hit(Scope::LoginIp, &ip, st.config.login_limit_ip)
            .await?;
        st.limiter
            .check(Scope::LoginEmail, &email, st.config.login_limit_email)
            .await?;
        let user = users::find_user_by_email(&st.db, &email).await?;
        let stored = user.as_ref().and_then(|u| u.password_hash.clone());
        let ok = verify_password(&st.hashing, password, stored).await?;
        let user = match user {
            Some(u) if ok => u,
            _ => {
                st.limiter
                    .hit(Scope::LoginEmail, &email, st.config.login_limit_email)
                    .await?;
                return Err(ApiError::unauthorized("invalid email or password").into());
            }
        };
        let pair = self
            .issue_pair(user.id, user.role, user.token_version, Uuid::now_v7())
            .await?;
        Ok(TokenResponse::Ok(Json(pair)))
    }

    /// Exchange a refresh token for a new pair; the old token stops working. Presenting
    /// an already used token revokes every token of its login (reuse detection).
    #[oai(path = "/auth/refresh", method = "post", operation_id = "refresh")]
    async fn refresh(
        &self,
        body: Json<RefreshRequest>,
    ) -> Result<TokenResponse, Errors<{ BODY | E401 }>> {
        let presented = body.0.refresh_token.get("refresh_token")?;
        let old_hash = common::crypto::sha256_hex(presented.trim().as_bytes());
        let (token, new_hash) = new_refresh_token();
        let expires = refresh_expiry()?;
        match refresh_tokens::rotate_refresh_token(&self.state.db, &old_hash, &new_hash, expires)
            .await?
        {
            refresh_tokens::Rotation::Rotated { user_id, .. } => {
                let user = users::find_user(&self.state.db, user_id)
                    .await?
                    .ok_or_else(|| ApiError::unauthorized("invalid refresh token"))?;
                let access_token = self
                    .state
                    .jwt
                    .issue(user_id, user.role, user.token_version)?;
                Ok(TokenResponse::Ok(Json(self.pair(access_token, token))))
            }
            refresh_tokens::Rotation::Reused { user_id, family_id } => {
                tracing::warn!(user.id = %user_id, token.family_id = %family_id, "refresh token reused; revoked its family");
                Err(ApiError::unauthorized(
                    "refresh token already used; this login has been revoked",
                )
                .into())
            }
            refresh_tokens::Rotation::Invalid => {
                Err(ApiError::unauthorized("invalid or expired refresh token").into())
            }
        }
    }

    /// The authenticated user.
    #[oai(path = "/me", method = "get", operation_id = "me")]
    async fn me(&self, auth: BearerAuth) -> Result<MeResponse, Errors<AUTH>> {
        let user = users::find_user(&self.state.db, auth.0.user_id)
            .await?
            .ok_or_else(|| ApiError::unauthorized("the user of this token no longer exists"))?;
        Ok(MeResponse::Ok(Json(MeBody {
            id: user.id.0,
            email: user.email,
            role: user.role,
        })))
    }
}

impl AuthApi {
    async fn issue_pair(
        &self,
        user_id: UserId,
        role: common::repo::users::Role,
        version: i32,
        family_id: Uuid,
    ) -> Result<TokenPair, ApiError> {
        let access_token = self.state.jwt.issue(user_id, role, version)?;
        let (token, hash) = new_refresh_token();
        refresh_tokens::insert_refresh_token(
            &self.state.db,
            user_id,
            family_id,
            &hash,
            refresh_expiry()?,
        )
        .await?;
        Ok(self.pair(access_token, token))
    }

    fn pair(&self, access_token: String, refresh_token: String) -> TokenPair {
        TokenPair {
            access_token,
            refresh_token,
            token_type: "Bearer".into(),
            expires_in: self.state.jwt.ttl().as_secs(),
        }
    }
}

fn refresh_expiry() -> Result<chrono::DateTime<chrono::Utc>, ApiError> {
    let ttl = chrono::Duration::from_std(REFRESH_TOKEN_TTL).map_err(ApiError::internal)?;
    Ok(chrono::Utc::now() + ttl)
}
