//! Authentication: HS256 access tokens (alg pinned, `exp` and `sub` required), the
//! `BearerAuth` security scheme yielding the caller, argon2id password hashing and
//! opaque refresh tokens.

use crate::error::ApiError;
use crate::state::AppState;
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use common::ids::UserId;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use poem::Request;
use poem_openapi::SecurityScheme;
use poem_openapi::auth::Bearer;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use uuid::Uuid;

/// How long a refresh token lives.
pub const REFRESH_TOKEN_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// Expiry (seconds since the epoch).
    pub exp: i64,
    /// Issued at (seconds since the epoch).
    pub iat: i64,
    /// `admin` or `member`.
    #[serde(default)]
    pub role: String,
}

/// The authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthUser {
    pub user_id: UserId,
    pub role: String,
}

/// Signing and verification keys plus the access token lifetime.
#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKeys")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl JwtKeys {
    /// Keys from the HS256 secret; tokens live `ttl`.
    pub fn new(secret: &str, ttl: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "sub"]);
        validation.leeway = 5;
        Self {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            validation,
            ttl,
        }
    }

    /// The access token lifetime.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Signs an access token for this user.
    pub fn issue(&self, user_id: UserId, role: &str) -> Result<String, ApiError> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: user_id.to_string(),
            iat: now,
            exp: now + self.ttl.as_secs() as i64,
            role: role.to_string(),
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).map_err(ApiError::internal)
    }

    /// Verifies an access token: signature, `alg` = HS256, `exp`, and a UUID `sub`.
    pub fn verify(&self, token: &str) -> Result<AuthUser, ApiError> {
        let data = decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| ApiError::unauthorized(format!("invalid access token: {e}")))?;
        let id = Uuid::parse_str(&data.claims.sub)
            .map_err(|_| ApiError::unauthorized("invalid access token: bad subject"))?;
        Ok(AuthUser {
            user_id: UserId(id),
            role: data.claims.role,
        })
    }
}

/// Bearer JWT authentication; yields the caller. Failures answer 401 problem+json.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", bearer_format = "JWT", checker = "check_jwt")]
pub struct BearerAuth(pub AuthUser);

async fn check_jwt(req: &Request, bearer: Bearer) -> poem::Result<AuthUser> {
    let state = req.data::<Arc<AppState>>().ok_or_else(|| {
        ApiError::internal(anyhow::anyhow!("AppState is not attached to the route"))
    })?;
    Ok(state.jwt.verify(&bearer.token)?)
}

/// Hashes a password with argon2id (default parameters) on the blocking pool.
pub async fn hash_password(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::internal)
}

/// Checks a password against a stored hash on the blocking pool. With no hash (unknown
/// user) it still spends the same work on a dummy hash, so timing does not reveal
/// which emails exist.
pub async fn verify_password(password: String, hash: Option<String>) -> Result<bool, ApiError> {
    tokio::task::spawn_blocking(move || {
        let stored = match &hash {
            Some(h) => h.as_str(),
            None => dummy_hash(),
        };
        let parsed =
            PasswordHash::new(stored).map_err(|e| anyhow::anyhow!("stored password hash: {e}"))?;
        let ok = Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        Ok::<bool, anyhow::Error>(ok && hash.is_some())
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::internal)
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let salt = SaltString::encode_b64(b"recomamp-dummy-salt")
            .unwrap_or_else(|_| SaltString::generate(&mut rand::rngs::OsRng));
        Argon2::default()
            .hash_password(b"not-a-real-password", &salt)
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

/// A new opaque refresh token and its SHA-256 hash (the only thing stored).
pub fn new_refresh_token() -> (String, String) {
    let token = common::crypto::random_token(32);
    let hash = common::crypto::sha256_hex(token.as_bytes());
    (token, hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "a-test-secret-that-is-at-least-32-chars";

    #[test]
    fn issued_tokens_verify_and_others_do_not() {
        let keys = JwtKeys::new(SECRET, Duration::from_secs(60));
        let user = UserId::new();
        let token = keys.issue(user, "member").expect("issue");
        assert_eq!(keys.verify(&token).expect("verify").user_id, user);

        let other = JwtKeys::new(
            "another-secret-that-is-at-least-32-chars",
            Duration::from_secs(60),
        );
        assert!(other.verify(&token).is_err(), "forged signature");

        let hs512 = encode(
            &Header::new(Algorithm::HS512),
            &Claims {
                sub: user.to_string(),
                exp: i64::MAX / 2,
                iat: 0,
                role: "member".into(),
            },
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .expect("encode");
        assert!(keys.verify(&hs512).is_err(), "alg is pinned to HS256");
    }

    #[test]
    fn expired_and_subjectless_tokens_fail() {
        let keys = JwtKeys::new(SECRET, Duration::from_secs(60));
        let enc = EncodingKey::from_secret(SECRET.as_bytes());
        let past = chrono::Utc::now().timestamp() - 3600;
        let expired = encode(
            &Header::new(Algorithm::HS256),
            &Claims {
                sub: UserId::new().to_string(),
                exp: past,
                iat: past,
                role: String::new(),
            },
            &enc,
        )
        .expect("encode");
        assert!(keys.verify(&expired).is_err());
        let no_sub = encode(
            &Header::new(Algorithm::HS256),
            &serde_json::json!({"exp": i64::MAX / 2}),
            &enc,
        )
        .expect("encode");
        assert!(keys.verify(&no_sub).is_err());
    }

    #[tokio::test]
    async fn passwords_hash_and_verify() {
        let hash = hash_password("correct horse".into()).await.expect("hash");
        assert!(hash.starts_with("$argon2id$"));
        assert!(
            verify_password("correct horse".into(), Some(hash.clone()))
                .await
                .expect("verify")
        );
        assert!(
            !verify_password("wrong".into(), Some(hash))
                .await
                .expect("verify")
        );
        assert!(
            !verify_password("anything".into(), None)
                .await
                .expect("verify")
        );
    }
}
