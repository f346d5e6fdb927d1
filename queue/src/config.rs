//! Queue configuration, Redis key layout and consumer naming.

use std::time::Duration;

use crate::error::{QueueError, Result};

/// Name of the consumer group every worker of a queue joins.
pub const GROUP: &str = "workers";

/// Maximum number of entries kept on a queue's dead-letter stream.
pub const DEAD_CAP: usize = 10_000;

/// Settings of the Redis Streams transport (producer and consumers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueConfig {
    /// Redis URL, e.g. `redis://127.0.0.1:6379`.
    pub redis_url: String,
    /// Prefix of every key (`{prefix}:q:{queue}` ...).
    pub prefix: String,
    /// BLOCK time of one XREADGROUP (also the health/PING cadence of an idle consumer).
    pub block: Duration,
    /// Pending entries idle longer than this belong to a dead consumer and are taken over.
    pub claim_idle: Duration,
    /// How often a consumer refreshes its own in-flight entries and looks for orphans.
    pub claim_interval: Duration,
    /// Handler failures after which a job goes to the dead list (counting the first run).
    pub max_attempts: u32,
    /// Upper bound of entries fetched by one XREADGROUP (further bounded by free slots).
    pub batch: usize,
    /// Consumers idle longer than this with no pending entries are removed from the group.
    pub consumer_gc_idle: Duration,
    /// How late a delayed job of this queue may fire, so that due jobs are promoted
    /// together: zero (the default) fires each on its time; a queue of status checks due
    /// every few seconds can take 100 ms, and its consumers then wake once per 100 ms for
    /// a batch instead of once per job.
    pub timer_granularity: Duration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            redis_url: "redis://127.0.0.1:6379".to_owned(),
            prefix: "amp".to_owned(),
            block: Duration::from_secs(1),
            claim_idle: Duration::from_secs(5),
            claim_interval: Duration::from_secs(1),
            max_attempts: 25,
            batch: 64,
            consumer_gc_idle: Duration::from_secs(600),
            timer_granularity: Duration::ZERO,
        }
    }
}

impl QueueConfig {
    /// Config with the given URL and prefix and default timings.
    pub fn new(redis_url: impl Into<String>, prefix: impl Into<String>) -> Self {
        Self {
            redis_url: redis_url.into(),
            prefix: prefix.into(),
            ..Self::default()
        }
    }

    /// Keys of one queue under this config's prefix.
    pub fn keys(&self, queue: &str) -> QueueKeys {
        QueueKeys::new(&self.prefix, queue)
    }

    /// Rejects values that cannot work (empty prefix, zero batch, ...).
    pub fn validate(&self) -> Result<()> {
        if self.prefix.is_empty() {
            return Err(QueueError::Config("prefix must not be empty".into()));
        }
        if self.batch == 0 {
            return Err(QueueError::Config("batch must be at least 1".into()));
        }
        if self.max_attempts == 0 {
            return Err(QueueError::Config("max_attempts must be at least 1".into()));
        }
        if self.block.is_zero() || self.claim_interval.is_zero() || self.claim_idle.is_zero() {
            return Err(QueueError::Config(
                "block, claim_interval and claim_idle must be positive".into(),
            ));
        }
        Ok(())
    }

    pub(crate) fn client(&self) -> Result<redis::Client> {
        self.validate()?;
        Ok(redis::Client::open(self.redis_url.as_str())?)
    }
}

/// The Redis keys of one queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueKeys {
    /// Stream of runnable jobs (consumer group [`GROUP`]).
    pub stream: String,
    /// Sorted set of delayed jobs (score = due unix ms).
    pub delayed: String,
    /// Capped stream of dead jobs.
    pub dead: String,
}

impl QueueKeys {
    /// Keys of `queue` under `prefix`.
    pub fn new(prefix: &str, queue: &str) -> Self {
        let stream = format!("{prefix}:q:{queue}");
        Self {
            delayed: format!("{stream}:delayed"),
            dead: format!("{stream}:dead"),
            stream,
        }
    }
}

pub(crate) fn validate_queue(queue: &str) -> Result<()> {
    if queue.is_empty() {
        return Err(QueueError::Config("queue name must not be empty".into()));
    }
    Ok(())
}

/// A consumer name unique per process start and backend: `{hostname}-{pid}-{random}`.
pub fn consumer_name() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.trim().is_empty())
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".to_owned());
    let rnd: u32 = rand::random();
    format!("{host}-{}-{rnd:08x}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_layout() {
        let k = QueueKeys::new("amp", "execution.submit");
        assert_eq!(k.stream, "amp:q:execution.submit");
        assert_eq!(k.delayed, "amp:q:execution.submit:delayed");
        assert_eq!(k.dead, "amp:q:execution.submit:dead");
    }

    #[test]
    fn consumer_names_are_unique() {
        let a = consumer_name();
        let b = consumer_name();
        assert_ne!(a, b);
        assert!(a.contains(&format!("-{}-", std::process::id())));
    }

    #[test]
    fn validate_rejects_bad_values() {
        assert!(QueueConfig::default().validate().is_ok());
        let c = QueueConfig {
            batch: 0,
            ..QueueConfig::default()
        };
        assert!(c.validate().is_err());
        let c = QueueConfig::new("redis://x", "");
        assert!(c.validate().is_err());
    }
}
