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

/// Dead jobs put back on their queues.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Replayed {
    pub jobs: u64,
}

/// Puts up to `limit` dead jobs not yet replayed (of one queue, or all) back on their
/// queues as they were, oldest first, and marks them `retried_at` in the same
/// transaction (a push that fails leaves them unmarked). Handlers are idempotent: a job
/// whose row has moved on does nothing.
pub async fn replay_dead_jobs(
    db: &DatabaseConnection,
    producer: &queue::Producer,
    queue: Option<&str>,
    limit: u64,
) -> anyhow::Result<Replayed> {
    use sea_orm::TransactionTrait;
    let txn = db.begin().await?;
    let rows = txn
        .query_all_raw(stmt(
            "SELECT id, queue, payload FROM dead_jobs WHERE retried_at IS NULL \
               AND ($1::text IS NULL OR queue = $1) ORDER BY created_at, id LIMIT $2 FOR UPDATE SKIP LOCKED",
            [queue.map(str::to_owned).into(), (limit as i64).into()],
        ))
        .await?;
    let mut ids = Vec::with_capacity(rows.len());
    for r in &rows {
        let id: Uuid = r.try_get("", "id")?;
        let q: String = r.try_get("", "queue")?;
        let payload: Json = r.try_get("", "payload")?;
        producer.push_raw(&q, serde_json::to_vec(&payload)?).await?;
        ids.push(serde_json::json!(id));
    }
    txn.execute_raw(stmt(
        "UPDATE dead_jobs SET retried_at = now() WHERE id IN (SELECT jsonb_array_elements_text($1::jsonb)::uuid)",
        [Json::Array(ids).into()],
    ))
    .await?;
    txn.commit().await?;
    Ok(Replayed {
        jobs: rows.len() as u64,
    })
}
