//! Producer: pushes jobs (now, batched, delayed), reads queue stats, cleans a prefix.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use redis::aio::ConnectionManager;
use serde::Serialize;

use crate::config::{GROUP, QueueConfig, validate_queue};
use crate::envelope::{Envelope, due_unix_ms, now_ms};
use crate::error::{QueueError, Result};
use crate::job::Job;
use crate::timer;

/// Id of a pushed job (UUID v7).
pub type JobId = uuid::Uuid;

/// Counts of one queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Stream entries not yet delivered to a consumer.
    pub queued: u64,
    /// Entries delivered and not yet acknowledged (running or fetched).
    pub running: u64,
    /// Delayed jobs waiting for their due time.
    pub scheduled: u64,
    /// Entries on the dead list.
    pub dead: u64,
}

/// One entry of a queue's dead list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadJob {
    /// Job id.
    pub id: String,
    /// Payload bytes.
    pub payload: Vec<u8>,
    /// Attempt of the last run.
    pub attempt: u32,
    /// Last error message.
    pub error: String,
}

/// Cloneable producer over one multiplexed, self-reconnecting connection.
#[derive(Clone)]
pub struct Producer {
    conn: ConnectionManager,
    config: Arc<QueueConfig>,
    trace: Option<TraceSource>,
}

/// Supplies the trace context (W3C `traceparent` text) a job pushed now carries, if any:
/// set by the process's telemetry, so that a job's span continues the trace that pushed it.
pub type TraceSource = Arc<dyn Fn() -> Option<String> + Send + Sync>;

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("prefix", &self.config.prefix)
            .finish_non_exhaustive()
    }
}

fn dead_job(e: &redis::streams::StreamId) -> DeadJob {
    DeadJob {
        id: e.get("id").unwrap_or_default(),
        payload: e.get("p").or_else(|| e.get("raw")).unwrap_or_default(),
        attempt: e.get("a").unwrap_or(0),
        error: e.get("e").unwrap_or_default(),
    }
}

const PIPELINE_CHUNK: usize = 10_000;

pub(crate) async fn connection_manager(config: &QueueConfig) -> Result<ConnectionManager> {
    let client = config.client()?;
    let cfg = manager_config();
    Ok(ConnectionManager::new_with_config(client, cfg).await?)
}

pub(crate) fn manager_config() -> redis::aio::ConnectionManagerConfig {
    redis::aio::ConnectionManagerConfig::new()
        .set_response_timeout(Some(Duration::from_secs(10)))
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_max_delay(Duration::from_secs(2))
}

impl Producer {
    /// Connects to Redis (fails fast if it is unreachable; reconnects by itself afterwards).
    pub async fn connect(config: QueueConfig) -> Result<Self> {
        let conn = connection_manager(&config).await?;
        Ok(Self {
            conn,
            config: Arc::new(config),
            trace: None,
        })
    }

    /// This producer with jobs carrying the trace context `source` supplies.
    pub fn with_trace(mut self, source: TraceSource) -> Self {
        self.trace = Some(source);
        self
    }

    /// A job's payload: its JSON, carrying `trace` (or the source's context).
    fn encode<T: Serialize + ?Sized>(&self, job: &T, trace: Option<&str>) -> Result<Vec<u8>> {
        let json = serde_json::to_vec(job)?;
        let from_source;
        let trace = match trace {
            Some(t) => Some(t),
            None => {
                from_source = self.trace.as_ref().and_then(|s| s());
                from_source.as_deref()
            }
        };
        Ok(match trace {
            Some(t) => crate::envelope::with_trace(json, t),
            None => json,
        })
    }

    /// Enqueues many jobs of one kind, each carrying its own trace context (one pipeline
    /// for many requests' runs).
    pub async fn enqueue_batch_traced<J: Job>(
        &self,
        jobs: &[(J, Option<String>)],
    ) -> Result<Vec<JobId>> {
        validate_queue(J::QUEUE)?;
        let stream = self.config.keys(J::QUEUE).stream;
        let mut ids = Vec::with_capacity(jobs.len());
        let mut conn = self.conn.clone();
        for chunk in jobs.chunks(PIPELINE_CHUNK) {
            let mut pipe = redis::pipe();
            for (job, trace) in chunk {
                let env = Envelope::new(self.encode(job, trace.as_deref())?);
                ids.push(parse_id(&env.id)?);
                pipe.add_command(xadd_cmd(&stream, &env)).ignore();
            }
            let () = pipe.query_async(&mut conn).await?;
        }
        Ok(ids)
    }

    /// The config this producer was built with.
    pub fn config(&self) -> &QueueConfig {
        &self.config
    }

    /// Enqueues one job of its kind's queue for immediate execution.
    pub async fn enqueue<J: Job>(&self, job: &J) -> Result<JobId> {
        self.push(J::QUEUE, job).await
    }

    /// Enqueues many jobs of one kind in pipelines (in order).
    pub async fn enqueue_batch<J: Job>(&self, jobs: &[J]) -> Result<Vec<JobId>> {
        self.push_batch(J::QUEUE, jobs).await
    }

    /// Enqueues a job that becomes runnable at `due`.
    pub async fn enqueue_at<J: Job>(&self, job: &J, due: SystemTime) -> Result<JobId> {
        self.push_delayed(J::QUEUE, job, due).await
    }

    /// Enqueues a job that becomes runnable after `delay`.
    pub async fn enqueue_after<J: Job>(&self, job: &J, delay: Duration) -> Result<JobId> {
        self.push_after(J::QUEUE, job, delay).await
    }

    /// Enqueues many jobs of one kind, each runnable at its own time.
    pub async fn enqueue_at_batch<J: Job>(&self, jobs: &[(J, SystemTime)]) -> Result<Vec<JobId>> {
        self.push_delayed_batch(J::QUEUE, jobs).await
    }

    /// Takes up to `max` runnable jobs of `J` off its queue, oldest first, after promoting
    /// the delayed ones due by `until` (a time in the future runs them early). For
    /// in-process test drivers only: it reads the stream directly, outside the consumer
    /// group, so it must not share a prefix with running workers.
    pub async fn take_runnable<J: Job>(&self, max: usize, until: SystemTime) -> Result<Vec<J>> {
        let keys = self.config.keys(J::QUEUE);
        let mut conn = self.conn.clone();
        loop {
            let n: usize = crate::scripts::PROMOTE
                .key(&keys.delayed)
                .key(&keys.stream)
                .key(&keys.dead)
                .arg(crate::envelope::to_unix_ms(until))
                .arg(crate::timer::PROMOTE_BATCH)
                .arg(crate::config::DEAD_CAP)
                .invoke_async(&mut conn)
                .await?;
            if n < crate::timer::PROMOTE_BATCH {
                break;
            }
        }
        let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
            .arg(&keys.stream)
            .arg("-")
            .arg("+")
            .arg("COUNT")
            .arg(max)
            .query_async(&mut conn)
            .await?;
        let mut jobs = Vec::with_capacity(reply.ids.len());
        for entry in &reply.ids {
            let env = Envelope::from_stream_entry(entry)?;
            let _: u64 = redis::cmd("XDEL")
                .arg(&keys.stream)
                .arg(&entry.id)
                .query_async(&mut conn)
                .await?;
            jobs.push(serde_json::from_slice(&env.payload)?);
        }
        Ok(jobs)
    }

    /// Counts of a kind's queue.
    pub async fn stats_of<J: Job>(&self) -> Result<QueueStats> {
        self.stats(J::QUEUE).await
    }

    /// Pushes one job for immediate execution onto a queue named at run time (the
    /// benchmarks' and tests' queues; the services enqueue by type).
    pub async fn push<T: Serialize + ?Sized>(&self, queue: &str, job: &T) -> Result<JobId> {
        self.push_raw(queue, self.encode(job, None)?).await
    }

    /// Pushes one job whose payload is already encoded (JSON bytes).
    pub async fn push_raw(&self, queue: &str, payload: Vec<u8>) -> Result<JobId> {
        validate_queue(queue)?;
        let env = Envelope::new(payload);
        let id = parse_id(&env.id)?;
        let mut conn = self.conn.clone();
        let _: String = xadd_cmd(&self.config.keys(queue).stream, &env)
            .query_async(&mut conn)
            .await?;
        Ok(id)
    }

    /// Pushes many jobs in pipelines (in push order).
    pub async fn push_batch<T: Serialize>(&self, queue: &str, jobs: &[T]) -> Result<Vec<JobId>> {
        validate_queue(queue)?;
        let stream = self.config.keys(queue).stream;
        let mut ids = Vec::with_capacity(jobs.len());
        let mut conn = self.conn.clone();
        for chunk in jobs.chunks(PIPELINE_CHUNK) {
            let mut pipe = redis::pipe();
            for job in chunk {
                let env = Envelope::new(self.encode(job, None)?);
                ids.push(parse_id(&env.id)?);
                pipe.add_command(xadd_cmd(&stream, &env)).ignore();
            }
            let () = pipe.query_async(&mut conn).await?;
        }
        Ok(ids)
    }

    /// Pushes a job that becomes runnable at `due` (immediately if `due` has passed).
    pub async fn push_delayed<T: Serialize + ?Sized>(
        &self,
        queue: &str,
        job: &T,
        due: SystemTime,
    ) -> Result<JobId> {
        validate_queue(queue)?;
        let due_ms = due_unix_ms(due);
        if due_ms <= now_ms() {
            return self.push(queue, job).await;
        }
        let env = Envelope::new(self.encode(job, None)?);
        let id = parse_id(&env.id)?;
        let keys = self.config.keys(queue);
        let mut conn = self.conn.clone();
        let _: i64 = zadd_cmd(&keys.delayed, due_ms, &env)
            .query_async(&mut conn)
            .await?;
        timer::notify_local(&self.config.redis_url, &keys.delayed);
        Ok(id)
    }

    /// Pushes many jobs, each runnable at its own time, in pipelines: a job whose time has
    /// passed goes straight to the stream, the others to the delayed set.
    pub async fn push_delayed_batch<T: Serialize>(
        &self,
        queue: &str,
        jobs: &[(T, SystemTime)],
    ) -> Result<Vec<JobId>> {
        self.push_timed(queue, jobs.iter().map(|(j, due)| (j, *due, None)))
            .await
    }

    /// Enqueues many jobs of one kind, each runnable at its own time and carrying its own
    /// trace context.
    pub async fn enqueue_at_batch_traced<J: Job>(
        &self,
        jobs: &[(J, SystemTime, Option<String>)],
    ) -> Result<Vec<JobId>> {
        self.push_timed(
            J::QUEUE,
            jobs.iter().map(|(j, due, t)| (j, *due, t.as_deref())),
        )
        .await
    }

    async fn push_timed<'a, T: Serialize + 'a>(
        &self,
        queue: &str,
        jobs: impl ExactSizeIterator<Item = (&'a T, SystemTime, Option<&'a str>)>,
    ) -> Result<Vec<JobId>> {
        validate_queue(queue)?;
        let keys = self.config.keys(queue);
        let mut ids = Vec::with_capacity(jobs.len());
        let mut conn = self.conn.clone();
        let mut delayed = false;
        let jobs: Vec<_> = jobs.collect();
        for chunk in jobs.chunks(PIPELINE_CHUNK) {
            let now = now_ms();
            let mut pipe = redis::pipe();
            for (job, due, trace) in chunk {
                let env = Envelope::new(self.encode(*job, *trace)?);
                ids.push(parse_id(&env.id)?);
                let due_ms = due_unix_ms(*due);
                if due_ms <= now {
                    pipe.add_command(xadd_cmd(&keys.stream, &env)).ignore();
                } else {
                    delayed = true;
                    pipe.add_command(zadd_cmd(&keys.delayed, due_ms, &env))
                        .ignore();
                }
            }
            let () = pipe.query_async(&mut conn).await?;
        }
        if delayed {
            timer::notify_local(&self.config.redis_url, &keys.delayed);
        }
        Ok(ids)
    }

    /// Pushes a job that becomes runnable after `delay`.
    pub async fn push_after<T: Serialize + ?Sized>(
        &self,
        queue: &str,
        job: &T,
        delay: Duration,
    ) -> Result<JobId> {
        self.push_delayed(queue, job, SystemTime::now() + delay)
            .await
    }

    /// Counts of a queue.
    pub async fn stats(&self, queue: &str) -> Result<QueueStats> {
        validate_queue(queue)?;
        let keys = self.config.keys(queue);
        let mut conn = self.conn.clone();
        let (len, scheduled, dead): (u64, u64, u64) = redis::pipe()
            .cmd("XLEN")
            .arg(&keys.stream)
            .cmd("ZCARD")
            .arg(&keys.delayed)
            .cmd("XLEN")
            .arg(&keys.dead)
            .query_async(&mut conn)
            .await?;
        let running = if len == 0 {
            0
        } else {
            let r: redis::RedisResult<redis::Value> = redis::cmd("XPENDING")
                .arg(&keys.stream)
                .arg(GROUP)
                .query_async(&mut conn)
                .await;
            match r {
                Ok(redis::Value::Array(items)) => match items.first() {
                    Some(redis::Value::Int(n)) => u64::try_from(*n).unwrap_or(0),
                    _ => 0,
                },
                Ok(_) => 0,
                Err(e) if e.code() == Some("NOGROUP") => 0,
                Err(e) => return Err(e.into()),
            }
        };
        Ok(QueueStats {
            queued: len.saturating_sub(running),
            running,
            scheduled,
            dead,
        })
    }

    /// Up to `count` most recent entries of a queue's dead list (newest first).
    pub async fn dead_jobs(&self, queue: &str, count: usize) -> Result<Vec<DeadJob>> {
        validate_queue(queue)?;
        let keys = self.config.keys(queue);
        let mut conn = self.conn.clone();
        let reply: redis::streams::StreamRangeReply = redis::cmd("XREVRANGE")
            .arg(&keys.dead)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(count)
            .query_async(&mut conn)
            .await?;
        Ok(reply.ids.iter().map(dead_job).collect())
    }

    /// Up to `count` oldest entries of a queue's dead list with their entry ids, for
    /// moving them to durable storage (then [`Producer::remove_dead`]).
    pub async fn oldest_dead(&self, queue: &str, count: usize) -> Result<Vec<(String, DeadJob)>> {
        validate_queue(queue)?;
        let keys = self.config.keys(queue);
        let mut conn = self.conn.clone();
        let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
            .arg(&keys.dead)
            .arg("-")
            .arg("+")
            .arg("COUNT")
            .arg(count)
            .query_async(&mut conn)
            .await?;
        Ok(reply
            .ids
            .iter()
            .map(|e| (e.id.clone(), dead_job(e)))
            .collect())
    }

    /// Deletes the given entries from a queue's dead list. Returns how many were removed.
    pub async fn remove_dead(&self, queue: &str, entry_ids: &[String]) -> Result<u64> {
        validate_queue(queue)?;
        if entry_ids.is_empty() {
            return Ok(0);
        }
        let keys = self.config.keys(queue);
        let mut conn = self.conn.clone();
        Ok(redis::cmd("XDEL")
            .arg(&keys.dead)
            .arg(entry_ids)
            .query_async(&mut conn)
            .await?)
    }

    /// Deletes every key under this producer's prefix (SCAN MATCH + UNLINK). Returns the count.
    pub async fn remove_prefix_keys(&self) -> Result<u64> {
        remove_prefix_keys(&mut self.conn.clone(), &self.config.prefix).await
    }
}

/// Deletes every key `{prefix}:*` through `conn`. Returns the number of keys removed.
pub async fn remove_prefix_keys<C: redis::aio::ConnectionLike + Send>(
    conn: &mut C,
    prefix: &str,
) -> Result<u64> {
    if prefix.is_empty() {
        return Err(QueueError::Config(
            "refusing to delete an empty prefix".into(),
        ));
    }
    let pattern = format!("{}:*", glob_escape(prefix));
    let mut cursor: u64 = 0;
    let mut removed = 0u64;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(conn)
            .await?;
        if !keys.is_empty() {
            let n: u64 = redis::cmd("UNLINK").arg(&keys).query_async(conn).await?;
            removed += n;
        }
        if next == 0 {
            return Ok(removed);
        }
        cursor = next;
    }
}

fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `ZADD delayed due_ms member`: a job waiting in the delayed set until `due_ms`.
fn zadd_cmd(delayed: &str, due_ms: u64, env: &Envelope) -> redis::Cmd {
    let mut cmd = redis::cmd("ZADD");
    cmd.arg(delayed).arg(due_ms).arg(env.encode_member());
    cmd
}

pub(crate) fn xadd_cmd(stream: &str, env: &Envelope) -> redis::Cmd {
    let mut cmd = redis::cmd("XADD");
    cmd.arg(stream)
        .arg("*")
        .arg("id")
        .arg(&env.id)
        .arg("p")
        .arg(&env.payload)
        .arg("a")
        .arg(env.attempt)
        .arg("t")
        .arg(env.enqueued_ms);
    cmd
}

fn parse_id(id: &str) -> Result<JobId> {
    uuid::Uuid::parse_str(id).map_err(|e| QueueError::InvalidEntry(format!("job id {id}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_escaping() {
        assert_eq!(glob_escape("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
        assert_eq!(glob_escape("test_abc"), "test_abc");
    }
}
