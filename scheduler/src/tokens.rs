//! Proactive LWA token refresh: every `AMP_TOKEN_REFRESH_INTERVAL` (default 10 min) the
//! scheduler refreshes the access tokens of active connections that expire within
//! `AMP_TOKEN_REFRESH_AHEAD` (default 15 min), so runs rarely wait for a refresh. Each
//! refresh happens under the connection row's lock, exactly like a worker's, so a worker
//! and the scheduler (or two schedulers) never refresh the same token twice. Each
//! refresh counts in `token_refreshes_total{outcome}`.

use crate::Scheduler;
use common::config::parse_duration;
use common::connection::{self as connections, RefreshError, Refreshed};
use common::telemetry::metrics::TokenOutcome;
use sea_orm::TransactionTrait;
use std::time::Duration;

/// How often, and how far ahead of expiry, tokens are refreshed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenRefresh {
    pub interval: Duration,
    pub ahead: Duration,
}

impl Default for TokenRefresh {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(600),
            ahead: Duration::from_secs(900),
        }
    }
}

impl TokenRefresh {
    /// Reads `AMP_TOKEN_REFRESH_INTERVAL` and `AMP_TOKEN_REFRESH_AHEAD` through `get`.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let mut out = Self::default();
        let read = |name: &str| -> anyhow::Result<Option<Duration>> {
            match get(name).filter(|v| !v.trim().is_empty()) {
                None => Ok(None),
                Some(v) => {
                    let d = parse_duration(&v).map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
                    anyhow::ensure!(!d.is_zero(), "{name}: must be longer than zero");
                    Ok(Some(d))
                }
            }
        };
        if let Some(d) = read("AMP_TOKEN_REFRESH_INTERVAL")? {
            out.interval = d;
        }
        if let Some(d) = read("AMP_TOKEN_REFRESH_AHEAD")? {
            out.ahead = d;
        }
        Ok(out)
    }

    /// Reads the process environment.
    pub fn from_env() -> anyhow::Result<Self> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }
}

/// What one refresh pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RefreshPass {
    pub refreshed: usize,
    pub reauth_required: usize,
    pub failed: usize,
}

/// At most this many connections per pass.
const BATCH: u64 = 500;

/// Refreshes every active connection whose token expires within `ahead`.
pub async fn refresh_expiring(s: &Scheduler) -> anyhow::Result<RefreshPass> {
    let mut pass = RefreshPass::default();
    let ahead = s.token_refresh.ahead;
    for id in connections::expiring(&s.db, ahead, BATCH).await? {
        let txn = s.db.begin().await?;
        // Someone else holds it (a worker refreshing), or it was refreshed meanwhile.
        if !connections::lock_if_expiring(&txn, id, ahead).await? {
            continue;
        }
        match connections::refresh_locked(&txn, &s.cipher, &s.lwa, id).await {
            Ok(Refreshed::Token(_)) => {
                txn.commit().await?;
                pass.refreshed += 1;
                s.metrics.token_refreshed(TokenOutcome::Refreshed, 1);
            }
            Ok(Refreshed::ReauthRequired(_)) => {
                txn.commit().await?;
                pass.reauth_required += 1;
                s.metrics.token_refreshed(TokenOutcome::ReauthRequired, 1);
            }
            Err(RefreshError::Db(e)) => return Err(e.into()),
            Err(e) => {
                tracing::warn!(connection.id = %id, error = %e, "could not refresh the access token; trying again next pass");
                pass.failed += 1;
                s.metrics.token_refreshed(TokenOutcome::Error, 1);
            }
        }
    }
    Ok(pass)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn defaults_are_ten_and_fifteen_minutes() {
        assert_eq!(
            TokenRefresh::from_lookup(lookup(&[])).unwrap(),
            TokenRefresh {
                interval: Duration::from_secs(600),
                ahead: Duration::from_secs(900)
            }
        );
    }

    #[test]
    fn reads_both_variables_and_rejects_bad_ones() {
        let t = TokenRefresh::from_lookup(lookup(&[
            ("AMP_TOKEN_REFRESH_INTERVAL", "500ms"),
            ("AMP_TOKEN_REFRESH_AHEAD", "1h"),
        ]))
        .unwrap();
        assert_eq!(t.interval, Duration::from_millis(500));
        assert_eq!(t.ahead, Duration::from_secs(3600));
        let e =
            TokenRefresh::from_lookup(lookup(&[("AMP_TOKEN_REFRESH_AHEAD", "soon")])).unwrap_err();
        assert!(e.to_string().contains("AMP_TOKEN_REFRESH_AHEAD"), "{e}");
        assert!(
            TokenRefresh::from_lookup(lookup(&[("AMP_TOKEN_REFRESH_INTERVAL", "0s")])).is_err()
        );
    }
}
