//! Amazon (LWA) connections: one per user, tokens stored encrypted by the caller.

use super::{RepoError, stmt};
use crate::amc::{LwaClient, LwaError};
use crate::crypto::Cipher;
use crate::ids::{Region, UserId};
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, FromQueryResult};
use std::time::Duration;
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

/// What exchanging a connection's refresh token with LWA gave.
#[derive(Debug)]
pub enum Refreshed {
    /// A new access token, stored (encrypted) with its expiry.
    Token(String),
    /// LWA refused the refresh token (`invalid_grant`): the connection is now
    /// `reauth_required`, with a `connection.reauth_required` event.
    ReauthRequired(String),
}

/// Why a refresh gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    #[error("no Amazon connection: connect one with PUT /api/v1/amazon/connection")]
    NoConnection,
    #[error("Login with Amazon is unavailable: {0}")]
    Transient(String),
    #[error(transparent)]
    Db(#[from] sea_orm::DbErr),
}

/// Exchanges the connection's refresh token with LWA and stores the result. The caller
/// holds the row's lock in `txn` (`SELECT … FOR UPDATE`) and commits it afterwards, so
/// concurrent callers wait and then find the fresh token instead of refreshing again.
pub async fn refresh_locked<C: ConnectionTrait>(
    txn: &C,
    cipher: &Cipher,
    lwa: &LwaClient,
    connection: Uuid,
) -> Result<Refreshed, RefreshError> {
    let refresh_enc: Vec<u8> = txn
        .query_one_raw(stmt(
            "SELECT refresh_token_enc FROM amazon_connections WHERE id = $1",
            [connection.into()],
        ))
        .await?
        .ok_or(RefreshError::NoConnection)?
        .try_get("", "refresh_token_enc")?;
    let refresh = match cipher.decrypt_str(&refresh_enc) {
        Ok(r) => r,
        Err(e) => {
            let reason = format!("stored refresh token unreadable: {e}");
            mark_reauth_required(txn, connection, &reason).await?;
            return Ok(Refreshed::ReauthRequired(reason));
        }
    };
    match lwa.refresh(Region::NA, &refresh).await {
        Ok(grant) => {
            let expires_at =
                Utc::now() + chrono::Duration::from_std(grant.expires_in).unwrap_or_default();
            let new_refresh = grant
                .refresh_token
                .as_deref()
                .map(|r| cipher.encrypt_str(r));
            txn.execute_raw(stmt(
                "UPDATE amazon_connections SET access_token_enc = $2, access_token_expires_at = $3, \
                   refresh_token_enc = coalesce($4, refresh_token_enc), last_error = NULL, updated_at = now() WHERE id = $1",
                [
                    connection.into(),
                    cipher.encrypt_str(&grant.access_token).into(),
                    expires_at.into(),
                    new_refresh.into(),
                ],
            ))
            .await?;
            tracing::info!(connection.id = %connection, expires_in_s = grant.expires_in.as_secs(), "refreshed the LWA access token");
            Ok(Refreshed::Token(grant.access_token))
        }
        Err(LwaError::InvalidGrant(reason)) => {
            mark_reauth_required(txn, connection, &reason).await?;
            Ok(Refreshed::ReauthRequired(reason))
        }
        Err(e) => Err(RefreshError::Transient(e.to_string())),
    }
}

/// Marks an active connection `reauth_required` (dropping its access token) and records
/// a `connection.reauth_required` event for its user. A no-op if it is not active.
pub async fn mark_reauth_required<C: ConnectionTrait>(
    txn: &C,
    connection: Uuid,
    reason: &str,
) -> Result<(), sea_orm::DbErr> {
    let r = txn
        .query_one_raw(stmt(
            "UPDATE amazon_connections SET status = 'reauth_required', last_error = $2, access_token_enc = NULL, \
               access_token_expires_at = NULL, updated_at = now() WHERE id = $1 AND status = 'active' RETURNING user_id",
            [connection.into(), reason.into()],
        ))
        .await?;
    if let Some(r) = r {
        let user: Uuid = r.try_get("", "user_id")?;
        txn.execute_raw(stmt(
            "INSERT INTO events (id, user_id, event_type, subject_id, payload) VALUES ($1, $2, 'connection.reauth_required', $3, $4)",
            [
                Uuid::now_v7().into(),
                user.into(),
                connection.into(),
                serde_json::json!({"connection_id": connection, "status": "reauth_required", "reason": reason}).into(),
            ],
        ))
        .await?;
        tracing::warn!(connection.id = %connection, reason, "LWA refused the refresh token; the connection needs to be authorised again");
    }
    Ok(())
}

/// Active connections whose access token is missing or expires within `ahead`, soonest
/// first (for the scheduler's proactive refresh).
pub async fn expiring(
    db: &impl ConnectionTrait,
    ahead: Duration,
    limit: u64,
) -> Result<Vec<Uuid>, sea_orm::DbErr> {
    let rows = db
        .query_all_raw(stmt(
            "SELECT id FROM amazon_connections WHERE status = 'active' AND \
               (access_token_expires_at IS NULL OR access_token_expires_at < now() + make_interval(secs => $1)) \
             ORDER BY access_token_expires_at NULLS FIRST LIMIT $2",
            [ahead.as_secs_f64().into(), (limit as i64).into()],
        ))
        .await?;
    rows.iter().map(|r| r.try_get("", "id")).collect()
}

/// Locks the connection row (skipping it if another process holds it) and tells whether
/// it is still active with a token expiring within `ahead`.
pub async fn lock_if_expiring(
    txn: &impl ConnectionTrait,
    connection: Uuid,
    ahead: Duration,
) -> Result<bool, sea_orm::DbErr> {
    Ok(txn
        .query_one_raw(stmt(
            "SELECT id FROM amazon_connections WHERE id = $1 AND status = 'active' AND \
               (access_token_expires_at IS NULL OR access_token_expires_at < now() + make_interval(secs => $2)) \
             FOR UPDATE SKIP LOCKED",
            [connection.into(), ahead.as_secs_f64().into()],
        ))
        .await?
        .is_some())
}

/// After a user authorised again: their runs already at AMC (running or fetching, with
/// an AMC id) whose next check lies in the future get it brought forward to now.
/// Returns `(execution id, status, new next_check_at)` for the caller to enqueue.
pub async fn resume_after_reauth(
    db: &impl ConnectionTrait,
    user_id: UserId,
) -> Result<Vec<(Uuid, String, DateTime<Utc>)>, sea_orm::DbErr> {
    let rows = db
        .query_all_raw(stmt(
            "UPDATE executions SET next_check_at = date_trunc('microseconds', now()), updated_at = now() \
             WHERE user_id = $1 AND status IN ('running', 'fetching') AND amc_execution_id IS NOT NULL \
               AND next_check_at > now() RETURNING id, status, next_check_at",
            [user_id.0.into()],
        ))
        .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("", "id")?,
                r.try_get("", "status")?,
                r.try_get("", "next_check_at")?,
            ))
        })
        .collect()
}
