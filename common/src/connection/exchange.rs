//! Connecting Amazon with a refresh token the user hands us: LWA must accept it first;
//! the tokens are stored encrypted, and if the connection needed re-authorising, the runs
//! that waited for it at AMC are resumed at once.

use super::{Connection, ConnectionStatus, EncryptedTokens, find_connection, upsert_connection};
use crate::amc::{LwaClient, LwaError};
use crate::crypto::Cipher;
use crate::ids::{Region, UserId};
use crate::repo::RepoError;
use chrono::Utc;
use sea_orm::DatabaseConnection;

/// What connecting needs.
pub struct Connector<'a> {
    pub db: &'a DatabaseConnection,
    pub cipher: &'a Cipher,
    pub lwa: &'a LwaClient,
    pub producer: &'a queue::Producer,
}

/// Why a connection was not stored.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// LWA refused the token: its words, for the user.
    #[error("{0}")]
    Refused(String),
    /// LWA did not answer usefully; try again later.
    #[error("Login with Amazon is unavailable: {0}")]
    Unavailable(String),
    /// LWA answered something else (a bad client id or secret: ours to fix).
    #[error("login with amazon token exchange: {0}")]
    Lwa(#[source] LwaError),
    #[error(transparent)]
    Repo(#[from] RepoError),
}

/// The stored connection and how many waiting runs were resumed.
#[derive(Debug)]
pub struct Connected {
    pub connection: Connection,
    pub resumed: usize,
}

/// Exchanges `refresh_token` with LWA, stores the connection `active`, and resumes the
/// runs that waited at AMC while it needed re-authorising (their next check brought to
/// now and enqueued; a lost push is covered by the reconciler, the rows being overdue).
pub async fn connect(
    c: &Connector<'_>,
    user: UserId,
    refresh_token: &str,
) -> Result<Connected, ConnectError> {
    let grant = c
        .lwa
        .refresh(Region::NA, refresh_token)
        .await
        .map_err(|e| match e {
            LwaError::InvalidGrant(description) => ConnectError::Refused(description),
            LwaError::Transient(m) => ConnectError::Unavailable(m),
            other => ConnectError::Lwa(other),
        })?;
    let expires_in = chrono::Duration::from_std(grant.expires_in).unwrap_or_default();
    let stored_refresh = grant.refresh_token.as_deref().unwrap_or(refresh_token);
    let tokens = EncryptedTokens {
        refresh_token_enc: c.cipher.encrypt(stored_refresh.as_bytes()),
        access_token_enc: c.cipher.encrypt(grant.access_token.as_bytes()),
        access_token_expires_at: Utc::now() + expires_in,
    };
    let before = find_connection(c.db, user).await?;
    let connection = upsert_connection(c.db, user, tokens).await?;
    tracing::info!(user.id = %user, "amazon connection stored");
    let mut resumed = 0;
    if before.is_some_and(|b| b.status == ConnectionStatus::ReauthRequired) {
        let steps = crate::execution::resume_after_reauth(c.db, user)
            .await
            .map_err(RepoError::from)?;
        resumed = steps.len();
        if let Err(e) = crate::jobs::enqueue_steps(c.producer, &steps).await {
            tracing::warn!(user.id = %user, error = %e, "could not enqueue the resumed checks; the reconciler will");
        }
    }
    Ok(Connected {
        connection,
        resumed,
    })
}
