//! The worker fleet, seen from a worker: it registers in `workers` (id = its consumer
//! name in every queue's group), heartbeats there, copies dead jobs from Redis to
//! `dead_jobs`, and at a hard stop hands its running jobs back to the queue so another
//! worker runs them at once. The SQL is `common::fleet`'s.

use crate::ctx::Ctx;
use crate::registry::HandBackOf;
use common::fleet::{DeadJob, Identity};
use queue::{Producer, QueueError};
use sea_orm::{DatabaseConnection, DbErr};
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
    #[error("database")]
    Db(#[from] DbErr),
    #[error("queue")]
    Queue(#[from] QueueError),
}

/// A fresh identity for this process (its queues filled in as kinds are added).
pub fn new_identity(concurrency: usize) -> Identity {
    Identity {
        id: queue::consumer_name(),
        hostname: hostname(),
        pid: std::process::id(),
        queues: Vec::new(),
        concurrency,
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

/// Heartbeats every [`HEARTBEAT_EVERY`] until `stop`.
pub async fn run_heartbeats(db: DatabaseConnection, me: Identity, stop: CancellationToken) {
    let mut tick = tokio::time::interval(HEARTBEAT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => return,
        }
        if let Err(e) = common::fleet::heartbeat(&db, &me).await {
            tracing::warn!(worker.id = %me.id, error = %common::telemetry::chain(&e), "heartbeat failed");
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
        let attempts = i32::try_from(job.attempt.saturating_add(1)).unwrap_or(i32::MAX);
        let dead = DeadJob {
            id: dead_row_id(&job.id),
            queue: queue.to_owned(),
            payload: payload_json(&job.payload),
            error: job.error.clone(),
            attempts,
        };
        common::fleet::keep_dead_job(db, &dead).await?;
        tracing::warn!(queue, job_id = %job.id, attempts, error = %job.error, "dead job kept in dead_jobs");
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
                        tracing::warn!(queue = %q, error = %common::telemetry::chain(&e), "moving dead jobs to Postgres failed");
                        break;
                    }
                }
            }
        }
    }
}

/// Hands back every job the consumers still hold (hard stop), each rewritten by its kind
/// (step jobs take the row's current lease as `due`), and a submit step for each admitted
/// run still on its way to AMC. Returns how many were re-queued.
pub async fn hand_back_running(ctx: &Ctx, handles: &[HandBackOf]) -> usize {
    let mut total = ctx.sending.hand_back(&ctx.producer).await;
    for h in handles {
        total += h.hand_back(ctx).await;
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
        let a = new_identity(4);
        let b = new_identity(4);
        assert_ne!(a.id, b.id);
        assert_eq!(a.pid, std::process::id());
        assert!(!a.hostname.is_empty());
    }
}
