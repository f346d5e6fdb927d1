//! The `workers` and `dead_jobs` tables: the fleet of worker processes (each registers,
//! heartbeats, and marks itself stopped on a graceful stop) and the jobs the queue gave
//! up on, kept in Postgres so they survive Redis.

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement, Value};
use serde_json::Value as Json;
use uuid::Uuid;

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

fn stmt(sql: &str, values: impl IntoIterator<Item = Value>) -> Statement {
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}

/// Inserts (or revives) the worker's row with a fresh heartbeat.
pub async fn register(db: &DatabaseConnection, me: &Identity) -> Result<(), DbErr> {
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
pub async fn heartbeat(db: &DatabaseConnection, me: &Identity) -> Result<(), DbErr> {
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
pub async fn mark_stopped(db: &DatabaseConnection, id: &str) -> Result<(), DbErr> {
    db.execute_raw(stmt(
        "UPDATE workers SET stopped_at = now(), last_heartbeat_at = now() WHERE id = $1",
        [id.to_owned().into()],
    ))
    .await?;
    Ok(())
}

/// A job the queue gave up on.
#[derive(Debug, Clone)]
pub struct DeadJob {
    /// Its job id when that is a UUID (so two workers draining one entry write one row).
    pub id: Uuid,
    pub queue: String,
    pub payload: Json,
    pub error: String,
    pub attempts: i32,
}

/// Keeps a dead job (once, by id).
pub async fn keep_dead_job(db: &DatabaseConnection, job: &DeadJob) -> Result<(), DbErr> {
    db.execute_raw(stmt(
        "INSERT INTO dead_jobs (id, queue, payload, error, attempts) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (id) DO NOTHING",
        [
            job.id.into(),
            job.queue.clone().into(),
            job.payload.clone().into(),
            job.error.clone().into(),
            job.attempts.into(),
        ],
    ))
    .await?;
    Ok(())
}
