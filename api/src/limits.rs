//! What bounds the cost of unauthenticated requests: password hashing and login attempts.
//!
//! - [`Hashing`]: at most `AMP_LOGIN_CONCURRENCY` argon2 hashes run at once in a process
//!   (each takes 19 MiB and a core for tens of milliseconds). A request waits briefly for
//!   a turn, and is answered 429 with `Retry-After` when the wait would be long, so a
//!   flood costs neither memory nor the latency of other requests.
//! - [`RateLimiter`]: fixed-window counters in Redis, shared by every API replica: login
//!   attempts per client IP (`AMP_LOGIN_RATE_LIMIT_IP`), failed logins per email
//!   (`AMP_LOGIN_RATE_LIMIT_EMAIL`), and registrations per IP. Keys hold a hash of the
//!   email or IP, never the value. If Redis does not answer, requests are let through
//!   (logged): logging in must not depend on the transport.

use crate::error::ApiError;
use common::config::RateLimit;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long a request waits for a hashing turn before it is told to come back.
const HASH_WAIT: Duration = Duration::from_secs(2);

/// The password hashes a process runs at once.
#[derive(Clone)]
pub struct Hashing {
    turns: Arc<Semaphore>,
    /// Requests allowed to wait for a turn (beyond that, 429 at once).
    waiting: Arc<Semaphore>,
}

impl Hashing {
    pub fn new(concurrency: usize) -> Self {
        let concurrency = concurrency.max(1);
        Self {
            turns: Arc::new(Semaphore::new(concurrency)),
            waiting: Arc::new(Semaphore::new(concurrency * 16)),
        }
    }

    /// A turn to hash, or 429 when too many wait or the wait is too long.
    pub async fn turn(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        let busy = || ApiError::TooManyRequests {
            detail: "too many sign-ins are being checked right now; try again shortly".into(),
            retry_after_secs: 1,
        };
        let _waiting = self
            .waiting
            .clone()
            .try_acquire_owned()
            .map_err(|_| busy())?;
        match tokio::time::timeout(HASH_WAIT, self.turns.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(busy()),
        }
    }

    /// Turns free right now.
    #[cfg(test)]
    pub(crate) fn free_turns(&self) -> usize {
        self.turns.available_permits()
    }

    /// Runs `work` (a password hash) on the blocking pool in a turn. The turn is held by
    /// the blocking task itself, so it ends when the work does: a client that disconnects
    /// drops the request, not the hash, and cannot free its turn while the hash still runs.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let turn = self.turn().await?;
        tokio::task::spawn_blocking(move || {
            let out = work();
            drop(turn);
            out
        })
        .await
        .map_err(ApiError::internal)
    }
}

/// What a counter counts.
#[derive(Debug, Clone, Copy)]
pub enum Scope {
    LoginIp,
    LoginEmail,
    RegisterIp,
}

impl Scope {
    fn key(self) -> &'static str {
        match self {
            Scope::LoginIp => "login_ip",
            Scope::LoginEmail => "login_email",
            Scope::RegisterIp => "register_ip",
        }
    }
}

/// Fixed-window counters in Redis under `{prefix}:rl:`.
#[derive(Clone)]
pub struct RateLimiter {
    redis: redis::aio::ConnectionManager,
    prefix: String,
}

impl RateLimiter {
    pub fn new(redis: redis::aio::ConnectionManager, prefix: &str) -> Self {
        Self {
            redis,
            prefix: format!("{prefix}:rl"),
        }
    }

    fn key(&self, scope: Scope, subject: &str, limit: RateLimit) -> (String, u64) {
        let window = limit.window.as_secs().max(1);
        let now = chrono::Utc::now().timestamp().max(0) as u64;
        let index = now / window;
        let left = (index + 1) * window - now;
        let subject = &common::crypto::sha256_hex(subject.as_bytes())[..32];
        (
            format!("{}:{}:{subject}:{index}", self.prefix, scope.key()),
            left,
        )
    }

    /// 429 if `subject` already used up `limit` in the current window (counts nothing).
    pub async fn check(
        &self,
        scope: Scope,
        subject: &str,
        limit: RateLimit,
    ) -> Result<(), ApiError> {
        let (key, left) = self.key(scope, subject, limit);
        let mut conn = self.redis.clone();
        let used: Result<Option<u64>, _> = redis::cmd("GET").arg(&key).query_async(&mut conn).await;
        match used {
            Ok(Some(n)) if n >= u64::from(limit.max) => Err(limited(left)),
            Ok(_) => Ok(()),
            Err(e) => {
                tracing::warn!(error = %e, "rate limit check failed; letting the request through");
                Ok(())
            }
        }
    }

    /// Counts one event of `subject`; 429 if that goes over `limit`.
    pub async fn hit(&self, scope: Scope, subject: &str, limit: RateLimit) -> Result<(), ApiError> {
        let (key, left) = self.key(scope, subject, limit);
        let mut conn = self.redis.clone();
        let counted: Result<(u64,), _> = redis::pipe()
            .cmd("INCR")
            .arg(&key)
            .cmd("EXPIRE")
            .arg(&key)
            .arg(left + 1)
            .arg("NX")
            .ignore()
            .query_async(&mut conn)
            .await;
        match counted {
            Ok((n,)) if n > u64::from(limit.max) => Err(limited(left)),
            Ok(_) => Ok(()),
            Err(e) => {
                tracing::warn!(error = %e, "rate limit count failed; letting the request through");
                Ok(())
            }
        }
    }
}

fn limited(retry_after_secs: u64) -> ApiError {
    ApiError::TooManyRequests {
        detail: format!("too many attempts; try again in {retry_after_secs} s"),
        retry_after_secs,
    }
}

/// The client's address: the peer's, or the first `X-Forwarded-For` hop when the API runs
/// behind a proxy that sets it (`AMP_TRUST_FORWARDED_FOR`).
pub fn client_ip(req: &poem::Request, trust_forwarded_for: bool) -> String {
    if trust_forwarded_for
        && let Some(ip) = req
            .headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .and_then(|v| v.trim().parse::<IpAddr>().ok())
    {
        return ip.to_string();
    }
    req.remote_addr()
        .as_socket_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashing_turns_are_bounded() {
        let h = Hashing::new(1);
        let first = h.turn().await.expect("a turn");
        // The second waits, and gets its turn when the first ends.
        let h2 = h.clone();
        let waiter = tokio::spawn(async move { h2.turn().await.is_ok() });
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(first);
        assert!(waiter.await.unwrap());
        // With every waiting place taken, a request is refused at once.
        let _held = h.turn().await.expect("a turn");
        let mut waiting = Vec::new();
        for _ in 0..16 {
            let h = h.clone();
            waiting.push(tokio::spawn(async move { h.turn().await.is_ok() }));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(matches!(
            h.turn().await,
            Err(ApiError::TooManyRequests { .. })
        ));
        for w in waiting {
            w.abort();
        }
    }

    /// A request dropped mid-hash (its client went away) keeps its turn until the hash
    /// itself ends.
    #[tokio::test]
    async fn a_dropped_request_keeps_its_turn_until_the_work_ends() {
        let h = Hashing::new(1);
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (finish_tx, finish_rx) = std::sync::mpsc::channel::<()>();
        let h1 = h.clone();
        let request = tokio::spawn(async move {
            h1.run(move || {
                started_tx.send(()).expect("test waits");
                finish_rx.recv().ok()
            })
            .await
        });
        tokio::task::spawn_blocking(move || started_rx.recv())
            .await
            .unwrap()
            .expect("the work started");
        request.abort();
        assert!(request.await.unwrap_err().is_cancelled());
        // The work still runs: no turn for anyone else.
        assert!(
            tokio::time::timeout(Duration::from_millis(200), h.turn())
                .await
                .is_err(),
            "a turn was given while the dropped request's work still ran"
        );
        // The work ends: the next request gets its turn.
        finish_tx.send(()).expect("the work waits");
        let next = tokio::time::timeout(Duration::from_secs(5), h.turn()).await;
        assert!(matches!(next, Ok(Ok(_))), "no turn after the work ended");
    }
}
