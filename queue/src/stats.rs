//! What the metrics read of the queues: for each, the jobs waiting in its stream, fetched
//! and not yet acknowledged, waiting in its delayed set, and the age of the oldest job
//! waiting to start. One script call reads every queue (one round trip, one instant).

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use redis::Script;
use redis::aio::ConnectionManager;

use crate::config::{GROUP, QueueConfig, validate_queue};
use crate::error::Result;
use crate::producer::connection_manager;

/// One queue at one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSnapshot {
    pub queue: String,
    /// Stream entries not yet delivered to any consumer (the stream's length minus the
    /// pending ones: an acknowledged entry is deleted with its ack).
    pub depth: u64,
    /// Entries delivered to a consumer and not acknowledged (running or fetched): XPENDING.
    pub pending: u64,
    /// Jobs in the delayed set (retries and jobs due later).
    pub delayed: u64,
    /// Unix ms of the oldest undelivered entry: its stream id, the instant it was pushed,
    /// promoted from the delayed set or handed back.
    pub oldest_ready_ms: Option<u64>,
    /// The earliest due time (unix ms) in the delayed set.
    pub earliest_due_ms: Option<u64>,
}

impl QueueSnapshot {
    /// How long the oldest job waiting to start has waited at `now_ms`: since its
    /// undelivered entry's id, or since the earliest due time of the delayed set when that
    /// has passed without promotion (no worker promotes), whichever is older; zero when
    /// nothing waits.
    pub fn oldest_age(&self, now_ms: u64) -> Duration {
        let overdue = self.earliest_due_ms.filter(|due| *due <= now_ms);
        let since = match (self.oldest_ready_ms, overdue) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => match a.or(b) {
                Some(t) => t,
                None => return Duration::ZERO,
            },
        };
        Duration::from_millis(now_ms.saturating_sub(since))
    }
}

/// KEYS: stream and delayed set of each queue, in pairs. ARGV: the consumer group.
/// Returns, per queue, {XLEN, group pending, ZCARD, first undelivered id or '',
/// earliest delayed score or ''}.
static SNAPSHOT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local out = {}
for q = 1, #KEYS / 2 do
  local stream, delayed = KEYS[2 * q - 1], KEYS[2 * q]
  local len = redis.call('XLEN', stream)
  local pending, last = 0, nil
  local groups = redis.pcall('XINFO', 'GROUPS', stream)
  if type(groups) == 'table' and groups.err == nil then
    for _, g in ipairs(groups) do
      local f = {}
      for i = 1, #g, 2 do f[g[i]] = g[i + 1] end
      if f['name'] == ARGV[1] then
        pending = f['pending']
        last = f['last-delivered-id']
      end
    end
  end
  local first
  if last then
    first = redis.call('XRANGE', stream, '(' .. last, '+', 'COUNT', 1)
  else
    first = redis.call('XRANGE', stream, '-', '+', 'COUNT', 1)
  end
  local oldest = ''
  if #first > 0 then oldest = first[1][1] end
  local due = redis.call('ZRANGE', delayed, 0, 0, 'WITHSCORES')
  local earliest = ''
  if #due > 0 then earliest = due[2] end
  out[q] = {len, pending, redis.call('ZCARD', delayed), oldest, earliest}
end
return out
"#,
    )
});

/// The unix ms of a stream entry id (`{ms}-{seq}`).
pub fn stream_id_ms(id: &str) -> Option<u64> {
    id.split_once('-').map_or(id, |(ms, _)| ms).parse().ok()
}

/// Reads queue snapshots over its own multiplexed, self-reconnecting connection.
#[derive(Clone)]
pub struct Inspector {
    conn: ConnectionManager,
    config: Arc<QueueConfig>,
}

impl std::fmt::Debug for Inspector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inspector")
            .field("prefix", &self.config.prefix)
            .finish_non_exhaustive()
    }
}

impl Inspector {
    /// Connects to Redis (fails fast if it is unreachable; reconnects by itself afterwards).
    pub async fn connect(config: QueueConfig) -> Result<Self> {
        let conn = connection_manager(&config).await?;
        Ok(Self {
            conn,
            config: Arc::new(config),
        })
    }

    /// One round trip: PING.
    pub async fn ping(&self) -> Result<()> {
        let _: String = redis::cmd("PING")
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(())
    }

    /// Every queue of `queues`, read by one script call.
    pub async fn snapshot(&self, queues: &[&str]) -> Result<Vec<QueueSnapshot>> {
        if queues.is_empty() {
            return Ok(Vec::new());
        }
        let mut call = SNAPSHOT.prepare_invoke();
        for q in queues {
            validate_queue(q)?;
            let keys = self.config.keys(q);
            call.key(keys.stream).key(keys.delayed);
        }
        call.arg(GROUP);
        let rows: Vec<(u64, u64, u64, String, String)> =
            call.invoke_async(&mut self.conn.clone()).await?;
        Ok(queues
            .iter()
            .zip(rows)
            .map(
                |(q, (len, pending, delayed, oldest, earliest))| QueueSnapshot {
                    queue: (*q).to_owned(),
                    depth: len.saturating_sub(pending),
                    pending,
                    delayed,
                    oldest_ready_ms: stream_id_ms(&oldest),
                    earliest_due_ms: earliest.parse::<f64>().ok().map(|s| s as u64),
                },
            )
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(ready: Option<u64>, due: Option<u64>) -> QueueSnapshot {
        QueueSnapshot {
            queue: "q".into(),
            depth: 0,
            pending: 0,
            delayed: 0,
            oldest_ready_ms: ready,
            earliest_due_ms: due,
        }
    }

    #[test]
    fn the_oldest_age_counts_waiting_entries_and_overdue_delayed_jobs() {
        assert_eq!(snap(None, None).oldest_age(10_000), Duration::ZERO);
        assert_eq!(
            snap(Some(4_000), None).oldest_age(10_000),
            Duration::from_secs(6)
        );
        // A delayed job not yet due does not wait.
        assert_eq!(snap(None, Some(12_000)).oldest_age(10_000), Duration::ZERO);
        assert_eq!(
            snap(Some(9_000), Some(12_000)).oldest_age(10_000),
            Duration::from_secs(1)
        );
        // One due and not promoted waits since its due time.
        assert_eq!(
            snap(Some(9_000), Some(7_000)).oldest_age(10_000),
            Duration::from_secs(3)
        );
        assert_eq!(snap(Some(11_000), None).oldest_age(10_000), Duration::ZERO);
    }

    #[test]
    fn stream_ids_carry_their_ms() {
        assert_eq!(stream_id_ms("1735689600000-3"), Some(1_735_689_600_000));
        assert_eq!(stream_id_ms("1735689600000"), Some(1_735_689_600_000));
        assert_eq!(stream_id_ms(""), None);
        assert_eq!(stream_id_ms("x-1"), None);
    }
}
