//! `/auth/*` and `/me`: registration, login, refresh-token rotation, the current user.

use super::ApiTags;
use crate::auth::{
    BearerAuth, REFRESH_TOKEN_TTL, hash_password, new_refresh_token, verify_password,
};
use crate::error::ApiError;
use crate::state::AppState;
use common::ids::UserId;
use common::repo::{RepoError, refresh_tokens, users};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use std::sync::Arc;
use uuid::Uuid;

/// `{email, password}`.
#[derive(Debug, Object)]
pub struct Credentials {
    pub email: String,
    pub password: String,
}

/// `{refresh_token}`.
#[derive(Debug, Object)]
pub struct RefreshRequest {
    pub refresh_token: String,
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
    pub role: String,
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
    /// Register a user.
    #[oai(path = "/auth/register", method = "post", operation_id = "register")]
    async fn register(&self, body: Json<Credentials>) -> Result<RegisterResponse, ApiError> {
        let email = normalize_email(&body.email)?;
        validate_password(&body.password)?;
        let hash = hash_password(body.0.password).await?;
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
            id: user.id,
            email: user.email,
        })))
    }

    /// Log in with email and password.
    #[oai(path = "/auth/login", method = "post", operation_id = "login")]
    async fn login(&self, body: Json<Credentials>) -> Result<TokenResponse, ApiError> {
        let email = body.email.trim().to_lowercase();
        let user = users::find_user_by_email(&self.state.db, &email).await?;
        let ok = verify_password(
            body.0.password,
            user.as_ref().and_then(|u| u.password_hash.clone()),
        )
        .await?;
        let user = match user {
            Some(u) if ok => u,
            _ => return Err(ApiError::unauthorized("invalid email or password")),
        };
        let pair = self
            .issue_pair(UserId(user.id), &user.role, Uuid::now_v7())
            .await?;
        Ok(TokenResponse::Ok(Json(pair)))
    }

    /// Exchange a refresh token for a new pair; the old token stops working. Presenting
    /// an already used token revokes every token of its login (reuse detection).
    #[oai(path = "/auth/refresh", method = "post", operation_id = "refresh")]
    async fn refresh(&self, body: Json<RefreshRequest>) -> Result<TokenResponse, ApiError> {
        let old_hash = common::crypto::sha256_hex(body.refresh_token.trim().as_bytes());
        let (token, new_hash) = new_refresh_token();
        let expires = refresh_expiry()?;
        match refresh_tokens::rotate_refresh_token(&self.state.db, &old_hash, &new_hash, expires)
            .await?
        {
            refresh_tokens::Rotation::Rotated { user_id, .. } => {
                let user = users::find_user(&self.state.db, user_id)
                    .await?
                    .ok_or_else(|| ApiError::unauthorized("invalid refresh token"))?;
                let access_token = self.state.jwt.issue(user_id, &user.role)?;
                Ok(TokenResponse::Ok(Json(self.pair(access_token, token))))
            }
            refresh_tokens::Rotation::Reused { user_id, family_id } => {
                tracing::warn!(user.id = %user_id, token.family_id = %family_id, "refresh token reused; revoked its family");
                Err(ApiError::unauthorized(
                    "refresh token already used; this login has been revoked",
                ))
            }
            refresh_tokens::Rotation::Invalid => {
                Err(ApiError::unauthorized("invalid or expired refresh token"))
            }
        }
    }

    /// The authenticated user.
    #[oai(path = "/me", method = "get", operation_id = "me")]
    async fn me(&self, auth: BearerAuth) -> Result<MeResponse, ApiError> {
        let user = users::find_user(&self.state.db, auth.0.user_id)
            .await?
            .ok_or_else(|| ApiError::unauthorized("the user of this token no longer exists"))?;
        Ok(MeResponse::Ok(Json(MeBody {
            id: user.id,
            email: user.email,
            role: user.role,
        })))
    }
}

impl AuthApi {
    async fn issue_pair(
        &self,
        user_id: UserId,
        role: &str,
        family_id: Uuid,
    ) -> Result<TokenPair, ApiError> {
        let access_token = self.state.jwt.issue(user_id, role)?;
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

/// Trims and lowercases an email and checks its shape (`local@domain.tld`).
pub(crate) fn normalize_email(raw: &str) -> Result<String, ApiError> {
    let email = raw.trim().to_lowercase();
    let bad = || ApiError::field("email", "is not a valid email address");
    if email.len() > 254 || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad());
    }
    let (local, domain) = email.split_once('@').ok_or_else(bad)?;
    let domain_ok = domain.contains('.')
        && !domain.contains('@')
        && domain
            .split('.')
            .all(|label| !label.is_empty() && !label.starts_with('-') && !label.ends_with('-'));
    if local.is_empty() || local.len() > 64 || !domain_ok {
        return Err(bad());
    }
    Ok(email)
}

/// At least 8 characters (and at most 1,024, to bound hashing work).
pub(crate) fn validate_password(password: &str) -> Result<(), ApiError> {
    let n = password.chars().count();
    if n < 8 {
        return Err(ApiError::field("password", "must be at least 8 characters"));
    }
    if n > 1024 {
        return Err(ApiError::field(
            "password",
            "must be at most 1024 characters",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_lowercased_and_checked() {
        assert_eq!(
            normalize_email("  Alice@Example.COM ").expect("ok"),
            "alice@example.com"
        );
        for bad in [
            "",
            "alice",
            "alice@",
            "@example.com",
            "a@b",
            "a b@example.com",
            "a@@example.com",
            "a@example..com",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords_need_eight_characters() {
        assert!(validate_password("1234567").is_err());
        assert!(validate_password("12345678").is_ok());
    }
}
