//! Amazon (LWA) connections: one per user, their tokens encrypted at rest; the exchange
//! of a refresh token a user hands us ([`connect`]), the refresh of access tokens under
//! the row's lock, fresh access tokens and AMC calls made with them ([`access_token`],
//! [`call_amc`]), and re-authorisation.

mod access;
mod exchange;

pub use access::{CallError, TokenError, Tokens, access_token, call_amc, refresh_margin};
pub use exchange::{ConnectError, Connected, Connector, connect};

use crate::amc::{LwaClient, LwaError};
use crate::crypto::Cipher;
use crate::event::{EventType, NewEvent};
use crate::ids::{ConnectionId, Region, UserId};
use crate::repo::{RepoError, stmt};
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, FromQueryResult};
use std::time::Duration;

crate::text_enum! {
    /// Whether a connection's refresh token works.
    pub enum ConnectionStatus("connection status") {
        Active = "active",
        /// LWA refused the refresh token: the user must authorise again.
        ReauthRequired = "reauth_required",
    }
}

/// The token state of a connection as stored (the access token still encrypted).
#[derive(Debug, Clone, FromQueryResult)]
pub struct TokenState {
    pub status: ConnectionStatus,
    pub last_error: Option<String>,
    pub access_token_enc: Option<Vec<u8>>,
    pub access_token_expires_at: Option<DateTime<Utc>>,
    /// When the row last changed (the access token's issue time when it was refreshed).
    pub updated_at: DateTime<Utc>,
}

/// The token state of a connection; with `lock`, the row is locked (`FOR UPDATE`) in the
/// caller's transaction, so one refresh happens while concurrent callers wait.
pub async fn token_state<C: ConnectionTrait>(
    conn: &C,
    id: ConnectionId,
    lock: bool,
) -> Result<Option<TokenState>, sea_orm::DbErr> {
    let sql = format!(
        "SELECT status, last_error, access_token_enc, access_token_expires_at, updated_at \
         FROM amazon_connections WHERE id = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    TokenState::find_by_statement(stmt(&sql, [id.into()]))
        .one(conn)
        .await
}

/// A connection's status, without its (encrypted) tokens.
#[derive(Debug, Clone, FromQueryResult)]
pub struct Connection {
    pub id: ConnectionId,
    pub status: ConnectionStatus,
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
) -> Result<Connection, RepoError> {
    let sql = format!(
        "INSERT INTO amazon_connections (id, user_id, refresh_token_enc, access_token_enc, access_token_expires_at, status)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (user_id) DO UPDATE SET refresh_token_enc = EXCLUDED.refresh_token_enc,
           access_token_enc = EXCLUDED.access_token_enc,
           access_token_expires_at = EXCLUDED.access_token_expires_at,
           status = EXCLUDED.status, last_error = NULL, updated_at = now()
         RETURNING {COLUMNS}"
    );
    let values = [
        ConnectionId::new().into(),
        user_id.into(),
        tokens.refresh_token_enc.into(),
        tokens.access_token_enc.into(),
        tokens.access_token_expires_at.into(),
        ConnectionStatus::Active.into(),
    ];
    Connection::find_by_statement(stmt(&sql, values))
        .one(db)
        .await?
        .ok_or(RepoError::NotFound)
}

/// The user's connection status, if they connected at all.
pub async fn find_connection(
    db: &impl ConnectionTrait,
    user_id: UserId,
) -> Result<Option<Connection>, RepoError> {
    let sql = format!("SELECT {COLUMNS} FROM amazon_connections WHERE user_id = $1");
    Ok(Connection::find_by_statement(stmt(&sql, [user_id.into()]))
        .one(db)
        .await?)
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
    connection: ConnectionId,
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
    connection: ConnectionId,
    reason: &str,
) -> Result<(), sea_orm::DbErr> {
    let r = txn
        .query_one_raw(stmt(
            "UPDATE amazon_connections SET status = $3, last_error = $2, access_token_enc = NULL, \
               access_token_expires_at = NULL, updated_at = now() WHERE id = $1 AND status = $4 RETURNING user_id",
            [
                connection.into(),
                reason.into(),
                ConnectionStatus::ReauthRequired.into(),
                ConnectionStatus::Active.into(),
            ],
        ))
        .await?;
    if let Some(r) = r {
        let user: UserId = r.try_get("", "user_id")?;
        let payload = serde_json::json!({
            "connection_id": connection,
            "status": ConnectionStatus::ReauthRequired,
            "reason": reason,
        });
        crate::event::record(
            txn,
            NewEvent {
                user,
                event_type: EventType::ConnectionReauthRequired,
                subject: connection.into(),
                payload,
            },
        )
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
) -> Result<Vec<ConnectionId>, sea_orm::DbErr> {
    let rows = db
        .query_all_raw(stmt(
            "SELECT id FROM amazon_connections WHERE status = $3 AND \
               (access_token_expires_at IS NULL OR access_token_expires_at < now() + make_interval(secs => $1)) \
             ORDER BY access_token_expires_at NULLS FIRST LIMIT $2",
            [
                ahead.as_secs_f64().into(),
                (limit as i64).into(),
                ConnectionStatus::Active.into(),
            ],
        ))
        .await?;
    rows.iter().map(|r| r.try_get("", "id")).collect()
}

/// Locks the connection row (skipping it if another process holds it) and tells whether
/// it is still active with a token expiring within `ahead`.
pub async fn lock_if_expiring(
    txn: &impl ConnectionTrait,
    connection: ConnectionId,
    ahead: Duration,
) -> Result<bool, sea_orm::DbErr> {
    Ok(txn
        .query_one_raw(stmt(
            "SELECT id FROM amazon_connections WHERE id = $1 AND status = $3 AND \
               (access_token_expires_at IS NULL OR access_token_expires_at < now() + make_interval(secs => $2)) \
             FOR UPDATE SKIP LOCKED",
            [
                connection.into(),
                ahead.as_secs_f64().into(),
                ConnectionStatus::Active.into(),
            ],
        ))
        .await?
        .is_some())
}
