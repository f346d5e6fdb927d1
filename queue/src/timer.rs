//! Delayed-job timer: one task per (Redis, queue) per process promotes due jobs.
//!
//! The timer knows the earliest due time (`ZRANGE delayed 0 0 WITHSCORES`), sleeps until
//! then (re-checking at least every 50 ms, or at once when a producer of this process
//! notifies it) and promotes due entries with an atomic Lua script in bounded batches.
//! A queue with a granularity (`QueueConfig::timer_granularity`) is looked at once per
//! granularity instead, and every job due by then is promoted in one go.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::aio::ConnectionManager;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::{DEAD_CAP, QueueKeys};
use crate::envelope::{Backoff, now_ms};
use crate::error::Result;
use crate::scripts::PROMOTE;

/// Longest sleep between two looks at the delayed set.
pub(crate) const RECHECK: Duration = Duration::from_millis(50);
/// Members promoted by one script call.
pub(crate) const PROMOTE_BATCH: usize = 500;

type Registry = Mutex<HashMap<String, Weak<TimerGuard>>>;

static REGISTRY: LazyLock<Registry> = LazyLock::new(|| Mutex::new(HashMap::new()));

/// Keeps the timer task of one queue alive; the task stops when the last guard drops.
#[derive(Debug)]
pub(crate) struct TimerGuard {
    notify: Arc<Notify>,
    cancel: CancellationToken,
}

impl Drop for TimerGuard {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

fn registry_key(redis_url: &str, delayed_key: &str) -> String {
    format!("{redis_url}|{delayed_key}")
}

/// Returns the process-wide timer of this queue, starting it if needed (inside tokio).
pub(crate) fn acquire(
    redis_url: &str,
    keys: &QueueKeys,
    conn: ConnectionManager,
    granularity: Duration,
) -> Arc<TimerGuard> {
    let key = registry_key(redis_url, &keys.delayed);
    let mut reg = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(g) = reg.get(&key).and_then(Weak::upgrade) {
        return g;
    }
    reg.retain(|_, w| w.strong_count() > 0);
    let guard = Arc::new(TimerGuard {
        notify: Arc::new(Notify::new()),
        cancel: CancellationToken::new(),
    });
    tokio::spawn(run_timer(
        conn,
        keys.clone(),
        guard.notify.clone(),
        guard.cancel.clone(),
        granularity,
    ));
    reg.insert(key, Arc::downgrade(&guard));
    guard
}

/// Wakes this process's timer of a queue (after a delayed push), if one runs.
pub(crate) fn notify_local(redis_url: &str, delayed_key: &str) {
    let notify = {
        let reg = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
        reg.get(&registry_key(redis_url, delayed_key))
            .filter(|w| w.strong_count() > 0)
            .and_then(|w| w.upgrade())
            .map(|g| g.notify.clone())
    };
    // The upgraded guard (if any) was dropped above, outside of any await; notify now.
    if let Some(n) = notify {
        n.notify_one();
    }
}

async fn run_timer(
    mut conn: ConnectionManager,
    keys: QueueKeys,
    notify: Arc<Notify>,
    cancel: CancellationToken,
    granularity: Duration,
) {
    let mut backoff = Backoff::new();
    loop {
        if cancel.is_cancelled() {
            return;
        }
        let wait = match promote_due(&mut conn, &keys).await {
            Ok(wait) => {
                backoff.reset();
                wait
            }
            Err(e) => {
                tracing::warn!(queue = %keys.stream, error = %e, "delayed-job timer: redis error");
                backoff.next_delay()
            }
        };
        if !granularity.is_zero() {
            // Jobs pushed meanwhile fire at most one granularity late, as all do here.
            tokio::select! {
                _ = tokio::time::sleep(wait.max(granularity)) => {}
                _ = cancel.cancelled() => return,
            }
            continue;
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = notify.notified() => {}
            _ = cancel.cancelled() => return,
        }
    }
}

/// How long from `now` until the unix millisecond `due` begins, to the microsecond (a
/// wait computed from whole milliseconds would oversleep by up to one).
fn until_ms(due: u64, now: SystemTime) -> Duration {
    let at = UNIX_EPOCH + Duration::from_millis(due);
    at.duration_since(now).unwrap_or_default()
}

/// Promotes every due member; returns how long to sleep before the next look.
pub(crate) async fn promote_due(
    conn: &mut ConnectionManager,
    keys: &QueueKeys,
) -> Result<Duration> {
    loop {
        let first: Vec<(Vec<u8>, f64)> = redis::cmd("ZRANGE")
            .arg(&keys.delayed)
            .arg(0)
            .arg(0)
            .arg("WITHSCORES")
            .query_async(conn)
            .await?;
        let Some((_, score)) = first.first() else {
            return Ok(RECHECK);
        };
        let due = if score.is_finite() && *score > 0.0 {
            *score as u64
        } else {
            0
        };
        let now = now_ms();
        if due > now {
            return Ok(until_ms(due, SystemTime::now()).min(RECHECK));
        }
        loop {
            let n: usize = PROMOTE
                .key(&keys.delayed)
                .key(&keys.stream)
                .key(&keys.dead)
                .arg(now)
                .arg(PROMOTE_BATCH)
                .arg(DEAD_CAP)
                .invoke_async(conn)
                .await?;
            if n < PROMOTE_BATCH {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_to_the_microsecond() {
        let now = UNIX_EPOCH + Duration::from_micros(1_000_900);
        // Due at 1,002 ms: 1.1 ms away, not the 2 ms whole milliseconds would say.
        assert_eq!(until_ms(1_002, now), Duration::from_micros(1_100));
        assert_eq!(until_ms(1_000, now), Duration::ZERO);
    }
}
