//! The worker fleet: each worker process registers in `workers` (id = its consumer name
//! in every queue's group), heartbeats there, marks itself stopped on a graceful stop,
//! copies dead jobs from Redis to `dead_jobs`, and at a hard stop hands its running jobs
//! back to the queue so another worker runs them at once.

use chrono::{DateTime, Utc};
use common::jobs::StepJobV1;
use queue::{HandBack, HeldJob, Producer, QueueError};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement, Value};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often a worker refreshes `workers.last_heartbeat_at`.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(2);
/// How often a worker moves dead jobs from Redis to Postgres.
pub const DEAD_DRAIN_EVERY: Duration = Duration::from_secs(2);
/// Dead entries moved per queue and round.
const DEAD_BATCH: usize = 200;

/// Errors of the fleet bookkeeping (never fatal for the worker).
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("database: {0}")]
    Db(#[from] DbErr),
    #[error("queue: {0}")]
    Queue(#[from] QueueError),
}

/// Who a worker process is, as registered in `workers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Consumer name in every queue's group: `{hostname}-{pid}-{random}`.
    pub id: String,
    pub hostname: String,
    pub pid: u32,
    pub queues: Vec<String>,
    /// Concurrency per queue (the largest one).
    pub concurrency: usize,
}

impl Identity {
    /// A fresh identity for this process.
    pub fn new(queues: Vec<String>, concurrency: usize) -> Self {
        Self {
            id: queue::consumer_name(),
            hostname: hostname(),
            pid: std::process::id(),
            queues,
            concurrency,
        }
    }
}

fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".to_owned())
}

fn stmt(sql: &str, values: impl IntoIterator<Item = Value>) -> Statement {
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}

/// Inserts (or revives) the worker's row with a fresh heartbeat.
pub async fn register(db: &DatabaseConnection, me: &Identity) -> Result<(), FleetError> {
    db.execute_raw(stmt(
        "INSERT INTO workers (id, hostname, pid, queues, concurrency, started_at, last_heartbeat_at) \
         VALUES ($1, $2, $3, string_to_array($4, ','), $5, now(), now()) \
         ON CONFLICT (id) DO UPDATE SET last_heartbeat_at = now(), stopped_at = NULL",
        [
            me.id.clone().into(),
            me.hostname.clone().into(),
            i32::try_from(me.pid).unwrap_or(i32::MAX).into(),
            me.queues.join(",").into(),
            i32::try_from(me.concurrency).unwrap_or(i32::MAX).into(),
        ],
    ))
    .await?;
    Ok(())
}

/// Refreshes the heartbeat; re-registers if the row vanished.
pub async fn heartbeat(db: &DatabaseConnection, me: &Identity) -> Result<(), FleetError> {
    let r = db
        .execute_raw(stmt(
            "UPDATE workers SET last_heartbeat_at = now() WHERE id = $1",
            [me.id.clone().into()],
        ))
        .await?;
    if r.rows_affected() == 0 {
        register(db, me).await?;
    }
    Ok(())
}

/// Records a graceful stop.
pub async fn mark_stopped(db: &DatabaseConnection, id: &str) -> Result<(), FleetError> {
    db.execute_raw(stmt(
        "UPDATE workers SET stopped_at = now(), last_heartbeat_at = now() WHERE id = $1",
        [id.to_owned().into()],
    ))
    .await?;
    Ok(())
}

/// Heartbeats every [`HEARTBEAT_EVERY`] until `stop`.
pub async fn run_heartbeats(db: DatabaseConnection, me: Identity, stop: CancellationToken) {
    let mut tick = tokio::time::interval(HEARTBEAT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => return,
        }
        if let Err(e) = heartbeat(&db, &me).await {
            tracing::warn!(worker.id = %me.id, error = %e, "heartbeat failed");
        }
    }
}

/// The `dead_jobs.payload` value: the JSON payload, or the bytes as a JSON string.
fn payload_json(payload: &[u8]) -> serde_json::Value {
    serde_json::from_slice(payload)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(payload).into()))
}

/// The `dead_jobs.id` of a dead job: its job id (UUID), so two workers draining the same
/// entry insert one row.
fn dead_row_id(job_id: &str) -> uuid::Uuid {
    uuid::Uuid::parse_str(job_id).unwrap_or_else(|_| uuid::Uuid::now_v7())
}

/// Moves up to one batch of `queue`'s dead list to `dead_jobs`, then deletes it from Redis.
/// Returns how many entries were moved.
pub async fn drain_dead(
    db: &DatabaseConnection,
    producer: &Producer,
    queue: &str,
) -> Result<usize, FleetError> {
    let entries = producer.oldest_dead(queue, DEAD_BATCH).await?;
    if entries.is_empty() {
        return Ok(0);
    }
    for (_, job) in &entries {
        db.execute_raw(stmt(
            "INSERT INTO dead_jobs (id, queue, payload, error, attempts) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (id) DO NOTHING",
            [
                dead_row_id(&job.id).into(),
                queue.to_owned().into(),
                payload_json(&job.payload).into(),
                job.error.clone().into(),
                i32::try_from(job.attempt.saturating_add(1))
                    .unwrap_or(i32::MAX)
                    .into(),
            ],
        ))
        .await?;
        tracing::warn!(queue, job_id = %job.id, attempts = job.attempt + 1, error = %job.error, "dead job kept in dead_jobs");
    }
    let ids: Vec<String> = entries.into_iter().map(|(id, _)| id).collect();
    producer.remove_dead(queue, &ids).await?;
    Ok(ids.len())
}

/// Drains every queue's dead list every [`DEAD_DRAIN_EVERY`] until `stop`.
pub async fn run_dead_drain(
    db: DatabaseConnection,
    producer: Producer,
    queues: Vec<String>,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(DEAD_DRAIN_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => return,
        }
        for q in &queues {
            loop {
                match drain_dead(&db, &producer, q).await {
                    Ok(n) if n >= DEAD_BATCH => continue,
                    Ok(_) => break,
                    Err(e) => {
                        tracing::warn!(queue = %q, error = %e, "moving dead jobs to Postgres failed");
                        break;
                    }
                }
            }
        }
    }
}

/// Rewrites a handed-back step job so it carries the row's current `next_check_at`: the
/// stopping worker leased the row (moved `next_check_at`), and a copy with the old `due`
/// would drop as a twin. With the lease value, the next worker takes the lease over at
/// once, and the stopping worker's late compare-and-set (if any) fails.
async fn take_over_lease(db: &DatabaseConnection, payload: &[u8]) -> Option<Vec<u8>> {
    let mut job: StepJobV1 = serde_json::from_slice(payload).ok()?;
    let row = db
        .query_one_raw(stmt(
            "SELECT next_check_at FROM executions WHERE id = $1",
            [job.execution_id.0.into()],
        ))
        .await
        .ok()??;
    let leased: Option<DateTime<Utc>> = row.try_get("", "next_check_at").ok()?;
    job.due = Some(leased?);
    serde_json::to_vec(&job).ok()
}

/// Hands back every job the consumers still hold (hard stop). Step jobs get the row's
/// current lease as `due` (see [`take_over_lease`]). Returns how many were re-queued.
pub async fn hand_back_running(
    db: &DatabaseConnection,
    handles: &[HandBack],
    step_queues: &[&str],
) -> usize {
    let mut total = 0;
    for h in handles {
        let mut jobs: Vec<HeldJob> = h.held();
        if jobs.is_empty() {
            continue;
        }
        if step_queues.contains(&h.queue()) {
            for j in &mut jobs {
                if let Some(p) = take_over_lease(db, &j.payload).await {
                    j.payload = p;
                }
            }
        }
        match h.hand_back(&jobs).await {
            Ok(n) => total += n,
            Err(e) => {
                tracing::warn!(queue = h.queue(), error = %e, "hand-back failed; jobs will be reclaimed after claim_idle")
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_and_ids() {
        assert_eq!(payload_json(br#"{"a":1}"#), serde_json::json!({"a": 1}));
        assert_eq!(payload_json(b"not json"), serde_json::json!("not json"));
        let id = uuid::Uuid::now_v7();
        assert_eq!(dead_row_id(&id.to_string()), id);
        assert_ne!(dead_row_id("x"), dead_row_id("x"));
    }

    #[test]
    fn identity_is_unique() {
        let a = Identity::new(vec!["q".into()], 4);
        let b = Identity::new(vec!["q".into()], 4);
        assert_ne!(a.id, b.id);
        assert_eq!(a.pid, std::process::id());
        assert!(!a.hostname.is_empty());
    }
}
