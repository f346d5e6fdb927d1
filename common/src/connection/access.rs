//! Fresh LWA access tokens for a connection, and AMC calls made with them. Tokens are cached
//! encrypted with their expiry and refreshed ahead of expiry by a margin that scales with
//! their lifetime, under the connection row's lock, so a hundred concurrent callers (steps
//! in workers, the scheduler's duties) cause one refresh.

use super::{ConnectionStatus, RefreshError, Refreshed, TokenState, refresh_locked, token_state};
use crate::amc::{AmcError, ErrorClass, LwaClient};
use crate::crypto::Cipher;
use crate::ids::ConnectionId;
use chrono::Utc;
use sea_orm::{DatabaseConnection, DbErr, TransactionTrait};
use std::future::Future;
use std::time::Duration;

/// What getting a token needs: the database, the cipher of tokens at rest, and LWA.
#[derive(Clone, Copy)]
pub struct Tokens<'a> {
    pub db: &'a DatabaseConnection,
    pub cipher: &'a Cipher,
    pub lwa: &'a LwaClient,
}

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

/// Why calling AMC did not give an answer.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error(transparent)]
    Token(TokenError),
    #[error(transparent)]
    Amc(AmcError),
}

/// How long before expiry a token counts as stale: a twelfth of its lifetime, between one
/// second and five minutes (five minutes of an hour-long token, ~2.5 s of a 30 s one).
pub fn refresh_margin(lifetime: Duration) -> Duration {
    (lifetime / 12).clamp(Duration::from_secs(1), Duration::from_secs(300))
}

/// The stored access token, decrypted, unless it is missing or within its margin of expiry.
fn fresh_token(cipher: &Cipher, t: &TokenState) -> Option<String> {
    let (enc, exp) = (t.access_token_enc.as_ref()?, t.access_token_expires_at?);
    let lifetime = (exp - t.updated_at).to_std().unwrap_or_default();
    let margin = chrono::Duration::from_std(refresh_margin(lifetime)).unwrap_or_default();
    if exp - margin <= Utc::now() {
        return None;
    }
    cipher.decrypt_str(enc).ok()
}

/// A usable access token, starting from the connection's state when the caller already
/// read it (`known`). `stale` is a token AMC just refused: refresh unless another caller
/// already replaced it.
pub async fn access_token(
    src: &Tokens<'_>,
    connection: ConnectionId,
    known: Option<TokenState>,
    stale: Option<&str>,
) -> Result<String, TokenError> {
    let cached = match known {
        Some(k) => k,
        None => token_state(src.db, connection, false)
            .await?
            .ok_or(TokenError::NoConnection)?,
    };
    if cached.status == ConnectionStatus::ReauthRequired {
        return Err(TokenError::ReauthRequired(
            cached.last_error.unwrap_or_default(),
        ));
    }
    if let Some(t) = fresh_token(src.cipher, &cached).filter(|t| Some(t.as_str()) != stale) {
        return Ok(t);
    }
    let txn = src.db.begin().await?;
    let locked = token_state(&txn, connection, true)
        .await?
        .ok_or(TokenError::NoConnection)?;
    if locked.status == ConnectionStatus::ReauthRequired {
        return Err(TokenError::ReauthRequired(
            locked.last_error.unwrap_or_default(),
        ));
    }
    if let Some(t) = fresh_token(src.cipher, &locked).filter(|t| Some(t.as_str()) != stale) {
        return Ok(t);
    }
    match refresh_locked(&txn, src.cipher, src.lwa, connection).await {
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

/// Calls AMC (`f`, given an access token) as the owner of `connection`; on an auth failure
/// refreshes the token once and calls again.
pub async fn call_amc<T, F, Fut>(
    src: &Tokens<'_>,
    connection: Option<ConnectionId>,
    known: Option<TokenState>,
    f: F,
) -> Result<T, CallError>
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = Result<T, AmcError>>,
{
    let conn = connection.ok_or(CallError::Token(TokenError::NoConnection))?;
    let token = access_token(src, conn, known, None)
        .await
        .map_err(CallError::Token)?;
    match f(token.clone()).await {
        Err(e) if matches!(e.class, ErrorClass::Auth) => {
            tracing::info!(status = ?e.status, "AMC refused the access token; refreshing it once");
            let token = access_token(src, conn, None, Some(&token))
                .await
                .map_err(CallError::Token)?;
            f(token).await.map_err(CallError::Amc)
        }
        other => other.map_err(CallError::Amc),
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
