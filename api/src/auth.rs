//! Authentication: HS256 access tokens (alg pinned, `exp` and `sub` required), the
//! `BearerAuth` security scheme yielding the caller, argon2id password hashing and
//! opaque refresh tokens.

use crate::error::ApiError;
use crate::limits::Hashing;
use crate::state::AppState;
use crate::users::GateError;
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use common::ids::UserId;
use common::repo::users::Role;
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
    /// Not before (seconds since the epoch).
    #[serde(default)]
    pub nbf: i64,
    /// `admin` or `member`.
    #[serde(default)]
    pub role: String,
    /// The user's token version when the token was issued (older tokens carry none: 0).
    #[serde(default)]
    pub ver: i32,
}

/// What a verified token says: whose it is, at which token version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenSubject {
    pub user_id: UserId,
    pub version: i32,
}

/// The authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthUser {
    pub user_id: UserId,
    pub role: Role,
}

/// Signing and verification keys plus the access token lifetime.
#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// The secret before a rotation (`AMP_JWT_SECRET_PREVIOUS`): its tokens are accepted
    /// until they expire; new ones are signed with the current secret.
    previous: Option<DecodingKey>,
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
        validation.validate_nbf = true;
        validation.leeway = 5;
        Self {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            previous: None,
            validation,
            ttl,
        }
    }

    /// These keys, also accepting tokens signed with `previous` until they expire.
    pub fn with_previous(mut self, previous: Option<&str>) -> Self {
        self.previous = previous.map(|p| DecodingKey::from_secret(p.as_bytes()));
        self
    }

    /// The access token lifetime.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Signs an access token for this user at its token version.
    pub fn issue(&self, user_id: UserId, role: Role, version: i32) -> Result<String, ApiError> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: user_id.to_string(),
            iat: now,
            nbf: now,
            exp: now + self.ttl.as_secs() as i64,
            role: role.as_str().to_owned(),
            ver: version,
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).map_err(ApiError::internal)
    }

    /// Verifies an access token: signature, `alg` = HS256, `exp`, `nbf`, and a UUID
    /// `sub`. The 401 says no more than that the token is not valid (the library's words
    /// stay in the debug log).
    pub fn verify(&self, token: &str) -> Result<TokenSubject, ApiError> {
        let invalid = || ApiError::unauthorized("invalid or expired access token");
        let decoded = match decode::<Claims>(token, &self.decoding, &self.validation) {
            Err(e) if *e.kind() == jsonwebtoken::errors::ErrorKind::InvalidSignature => {
                match &self.previous {
                    Some(previous) => decode::<Claims>(token, previous, &self.validation),
                    None => Err(e),
                }
            }
            other => other,
        };
        let data = decoded.map_err(|e| {
            tracing::debug!(error = %e, "access token refused");
            invalid()
        })?;
        let id = Uuid::parse_str(&data.claims.sub).map_err(|_| invalid())?;
        Ok(TokenSubject {
            user_id: UserId(id),
            version: data.claims.ver,
        })
    }
}

/// Bearer JWT authentication; yields the caller. Failures answer 401 problem+json.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", bearer_format = "JWT", checker = "check_jwt")]
pub struct BearerAuth(pub AuthUser);

/// A valid token of a user that still exists at the token's version; its role is the
/// user's current one. Everything else is 401.
async fn check_jwt(req: &Request, bearer: Bearer) -> poem::Result<AuthUser> {
    let state = req.data::<Arc<AppState>>().ok_or_else(|| {
        ApiError::internal(anyhow::anyhow!("AppState is not attached to the route"))
    })?;
    let subject = state.jwt.verify(&bearer.token)?;
    match state.users.check(subject.user_id, subject.version).await {
        Ok(known) => Ok(AuthUser {
            user_id: subject.user_id,
            role: known.role,
        }),
        Err(GateError::Refused) => Err(ApiError::unauthorized(
            "invalid or expired access token: its user no longer exists or its tokens were revoked",
        )
        .into()),
        Err(GateError::Db(e)) => Err(ApiError::from(e).into()),
    }
}

/// Hashes a password with argon2id (default parameters) on the blocking pool, in one of
/// the process's few hashing turns.
pub async fn hash_password(hashing: &Hashing, password: String) -> Result<String, ApiError> {
    hashing
        .run(move || {
            common::crypto::hash_password(&password)
                .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))
        })
        .await?
        .map_err(ApiError::internal)
}

/// Checks a password against a stored hash on the blocking pool, in a hashing turn. With
/// no hash (unknown user) it still spends the same work on a dummy hash, so timing does
/// not reveal which emails exist.
pub async fn verify_password(
    hashing: &Hashing,
    password: String,
    hash: Option<String>,
) -> Result<bool, ApiError> {
    hashing
        .run(move || {
            let stored = match &hash {
                Some(h) => h.as_str(),
                None => dummy_hash(),
            };
            let parsed = PasswordHash::new(stored)
                .map_err(|e| anyhow::anyhow!("stored password hash: {e}"))?;
            let ok = Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok();
            Ok::<bool, anyhow::Error>(ok && hash.is_some())
        })
        .await?
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
        let token = keys.issue(user, Role::Member, 3).expect("issue");
        let subject = keys.verify(&token).expect("verify");
        assert_eq!((subject.user_id, subject.version), (user, 3));

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
                nbf: 0,
                role: "member".into(),
                ver: 0,
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
                nbf: past,
                role: String::new(),
                ver: 0,
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
        // Not valid yet: refused, and the 401 names no library error.
        let future = chrono::Utc::now().timestamp() + 3600;
        let early = encode(
            &Header::new(Algorithm::HS256),
            &serde_json::json!({"sub": UserId::new().to_string(), "exp": future + 60, "nbf": future}),
            &enc,
        )
        .expect("encode");
        let e = keys.verify(&early).unwrap_err();
        assert_eq!(e.to_string(), "invalid or expired access token");
    }

    #[tokio::test]
    async fn passwords_hash_and_verify() {
        let h = Hashing::new(1);
        let hash = hash_password(&h, "correct horse".into())
            .await
            .expect("hash");
        assert!(hash.starts_with("$argon2id$"));
        assert!(
            verify_password(&h, "correct horse".into(), Some(hash.clone()))
                .await
                .expect("verify")
        );
        assert!(
            !verify_password(&h, "wrong".into(), Some(hash))
                .await
                .expect("verify")
        );
        assert!(
            !verify_password(&h, "anything".into(), None)
                .await
                .expect("verify")
        );
    }

    /// A stored hash whose check takes long enough (hundreds of ms) to watch it run.
    fn slow_hash(password: &str) -> String {
        let params = argon2::Params::new(19 * 1024, 40, 1, None).expect("params");
        let argon = Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        argon
            .hash_password(password.as_bytes(), &salt)
            .expect("hash")
            .to_string()
    }

    /// A login whose client disconnects mid-check keeps its hashing turn until the check
    /// ends, so disconnecting cannot start more hashes than the bound.
    #[tokio::test]
    async fn a_dropped_login_holds_its_turn_until_its_hash_ends() {
        let h = Hashing::new(1);
        let stored = slow_hash("correct horse");
        let h1 = h.clone();
        let login =
            tokio::spawn(async move { verify_password(&h1, "wrong".into(), Some(stored)).await });
        // Wait until the check has its turn (it is then on the blocking pool).
        let started = std::time::Instant::now();
        while h.free_turns() > 0 {
            assert!(started.elapsed() < Duration::from_secs(10), "never started");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        login.abort();
        assert!(login.await.unwrap_err().is_cancelled());
        assert!(
            tokio::time::timeout(Duration::from_millis(50), h.turn())
                .await
                .is_err(),
            "a turn was free while the dropped login's hash still ran"
        );
        // A turn comes once the hash ends (asked again past each 429 of a long wait).
        let asked = std::time::Instant::now();
        while h.turn().await.is_err() {
            assert!(
                asked.elapsed() < Duration::from_secs(30),
                "no turn after the hash ended"
            );
        }
    }

    /// An unknown email (no stored hash) waits for a hashing turn like a known one.
    #[tokio::test]
    async fn unknown_and_known_emails_both_wait_for_a_turn() {
        let h = Hashing::new(1);
        let known = hash_password(&h, "correct horse".into())
            .await
            .expect("hash");
        for stored in [None, Some(known)] {
            let unknown = stored.is_none();
            let held = h.turn().await.expect("the only turn");
            let h1 = h.clone();
            let login =
                tokio::spawn(async move { verify_password(&h1, "guess".into(), stored).await });
            tokio::time::sleep(Duration::from_millis(200)).await;
            assert!(
                !login.is_finished(),
                "unknown email: {unknown}: checked without a turn"
            );
            drop(held);
            let ok = tokio::time::timeout(Duration::from_secs(10), login)
                .await
                .expect("checked once the turn was free")
                .unwrap()
                .expect("verify");
            assert!(!ok);
        }
    }
}
