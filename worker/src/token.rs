//! Fresh LWA access tokens for a connection: cached encrypted with their expiry, refreshed
//! ahead of expiry by a margin that scales with their lifetime, under the connection row's
//! lock, so a hundred concurrent submits cause one refresh.

use crate::ctx::Ctx;
use chrono::Utc;
use common::connection::{self, ConnectionStatus, RefreshError, Refreshed, TokenState};
use common::ids::ConnectionId;
use sea_orm::{DbErr, TransactionTrait};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the Amazon connection needs to be authorised again: {0}")]
    ReauthRequired(String),
    #[error("no Amazon connection: connect one with PUT /api/v1/amazon/connection")]
    NoConnection,
    #[error("Login with Amazon is unavailable: {0}")]
    Transient(String),
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// How long before expiry a token counts as stale: a twelfth of its lifetime, between one
/// second and five minutes (five minutes of an hour-long token, ~2.5 s of a 30 s one).
pub fn refresh_margin(lifetime: Duration) -> Duration {
    (lifetime / 12).clamp(Duration::from_secs(1), Duration::from_secs(300))
}

/// The stored access token, decrypted, unless it is missing or within its margin of expiry.
fn fresh_token(ctx: &Ctx, t: &TokenState) -> Option<String> {
    let (enc, exp) = (t.access_token_enc.as_ref()?, t.access_token_expires_at?);
    let lifetime = (exp - t.updated_at).to_std().unwrap_or_default();
    let margin = chrono::Duration::from_std(refresh_margin(lifetime)).unwrap_or_default();
    if exp - margin <= Utc::now() {
        return None;
    }
    ctx.cipher.decrypt_str(enc).ok()
}

/// A usable access token. `stale` is a token AMC just refused: refresh unless another
/// worker already replaced it.
pub async fn access_token(
    ctx: &Ctx,
    connection: ConnectionId,
    stale: Option<&str>,
) -> Result<String, TokenError> {
    access_token_with(ctx, connection, None, stale).await
}

/// [`access_token`], starting from the connection's state when the caller already read it
/// (a status check reads it with its row).
pub async fn access_token_with(
    ctx: &Ctx,
    connection: ConnectionId,
    known: Option<TokenState>,
    stale: Option<&str>,
) -> Result<String, TokenError> {
    let cached = match known {
        Some(k) => k,
        None => connection::token_state(&ctx.db, connection, false)
            .await?
            .ok_or(TokenError::NoConnection)?,
    };
    if cached.status == ConnectionStatus::ReauthRequired {
        return Err(TokenError::ReauthRequired(
            cached.last_error.unwrap_or_default(),
        ));
    }
    if let Some(t) = fresh_token(ctx, &cached).filter(|t| Some(t.as_str()) != stale) {
        return Ok(t);
    }
    let txn = ctx.db.begin().await?;
    let locked = connection::token_state(&txn, connection, true)
        .await?
        .ok_or(TokenError::NoConnection)?;
    if locked.status == ConnectionStatus::ReauthRequired {
        return Err(TokenError::ReauthRequired(
            locked.last_error.unwrap_or_default(),
        ));
    }
    if let Some(t) = fresh_token(ctx, &locked).filter(|t| Some(t.as_str()) != stale) {
        return Ok(t);
    }
    match connection::refresh_locked(&txn, &ctx.cipher, &ctx.lwa, connection).await {
        Ok(Refreshed::Token(token)) => {
            txn.commit().await?;
            Ok(token)
        }
        Ok(Refreshed::ReauthRequired(reason)) => {
            txn.commit().await?;
            Err(TokenError::ReauthRequired(reason))
        }
        Err(RefreshError::Db(e)) => Err(e.into()),
        Err(RefreshError::NoConnection) => Err(TokenError::NoConnection),
        Err(RefreshError::Transient(m)) => Err(TokenError::Transient(m)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn margin_scales_with_lifetime() {
        assert_eq!(
            refresh_margin(Duration::from_secs(3600)),
            Duration::from_secs(300)
        );
        assert_eq!(
            refresh_margin(Duration::from_secs(30)),
            Duration::from_millis(2500)
        );
        assert_eq!(
            refresh_margin(Duration::from_secs(5)),
            Duration::from_secs(1)
        );
    }
}
