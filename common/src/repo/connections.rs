//! Amazon (LWA) connections: one per user, tokens stored encrypted by the caller.

use super::{RepoError, stmt};
use crate::ids::UserId;
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, FromQueryResult};
use uuid::Uuid;

/// A connection's status, without its (encrypted) tokens.
#[derive(Debug, Clone, FromQueryResult)]
pub struct ConnectionStatus {
    pub id: Uuid,
    pub status: String,
    pub last_error: Option<String>,
    pub access_token_expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The encrypted tokens to store for a user.
#[derive(Debug, Clone)]
pub struct EncryptedTokens {
    pub refresh_token_enc: Vec<u8>,
    pub access_token_enc: Vec<u8>,
    pub access_token_expires_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, status, last_error, access_token_expires_at, created_at, updated_at";

/// Creates or replaces the user's connection with these tokens, status `active`.
pub async fn upsert_connection(
    db: &impl ConnectionTrait,
    user_id: UserId,
    tokens: EncryptedTokens,
) -> Result<ConnectionStatus, RepoError> {
    let sql = format!(
        "INSERT INTO amazon_connections (id, user_id, refresh_token_enc, access_token_enc, access_token_expires_at, status)
         VALUES ($1, $2, $3, $4, $5, 'active')
         ON CONFLICT (user_id) DO UPDATE SET refresh_token_enc = EXCLUDED.refresh_token_enc,
           access_token_enc = EXCLUDED.access_token_enc,
           access_token_expires_at = EXCLUDED.access_token_expires_at,
           status = 'active', last_error = NULL, updated_at = now()
         RETURNING {COLUMNS}"
    );
    let values = [
        Uuid::now_v7().into(),
        user_id.0.into(),
        tokens.refresh_token_enc.into(),
        tokens.access_token_enc.into(),
        tokens.access_token_expires_at.into(),
    ];
    ConnectionStatus::find_by_statement(stmt(&sql, values))
        .one(db)
        .await?
        .ok_or(RepoError::NotFound)
}

/// The user's connection status, if they connected at all.
pub async fn find_connection(
    db: &impl ConnectionTrait,
    user_id: UserId,
) -> Result<Option<ConnectionStatus>, RepoError> {
    let sql = format!("SELECT {COLUMNS} FROM amazon_connections WHERE user_id = $1");
    Ok(
        ConnectionStatus::find_by_statement(stmt(&sql, [user_id.0.into()]))
            .one(db)
            .await?,
    )
}
