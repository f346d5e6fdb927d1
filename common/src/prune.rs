//! Pruning, a scheduler duty: events older than the retention (`AMP_EVENT_RETENTION`),
//! except those a webhook delivery still needs (one not yet succeeded: pending, failed,
//! skipped or dead); finished job data (dead jobs kept in `dead_jobs`, schedule history
//! entries) older than the retention; and the rows of worker and scheduler processes that
//! stopped long ago. Each kind is deleted in bounded batches with `SKIP LOCKED`, so several
//! replicas can prune at once without waiting on each other.

use crate::repo::stmt;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr};
use std::time::Duration;

/// Rows deleted per statement.
const BATCH: i64 = 10_000;
/// Statements per kind per pass (the rest waits for the next pass).
const MAX_BATCHES: usize = 100;
/// How long a stopped worker's or scheduler's row is kept. A scheduler's rows say which
/// ticks came due while some replica was alive, so they outlive any catch-up window.
pub const PROCESS_ROWS_KEPT: Duration = Duration::from_secs(32 * 24 * 3600);

/// What a pass removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    pub events: u64,
    pub dead_jobs: u64,
    pub schedule_runs: u64,
    pub workers: u64,
    pub schedulers: u64,
}

impl Pruned {
    pub fn total(&self) -> u64 {
        self.events + self.dead_jobs + self.schedule_runs + self.workers + self.schedulers
    }
}

/// Deletes by `sql` (one batch per statement, `$1` the age in seconds, `$2` the batch)
/// until a batch comes back short.
async fn in_batches<C: ConnectionTrait>(
    db: &C,
    sql: &str,
    age: Duration,
    third: Option<sea_orm::Value>,
) -> Result<u64, DbErr> {
    let mut total = 0;
    for _ in 0..MAX_BATCHES {
        let mut values = vec![age.as_secs_f64().into(), BATCH.into()];
        values.extend(third.clone());
        let n = db.execute_raw(stmt(sql, values)).await?.rows_affected();
        total += n;
        if n < BATCH as u64 {
            break;
        }
    }
    Ok(total)
}

/// One pruning pass with `retention` for events and finished job data.
pub async fn prune(db: &DatabaseConnection, retention: Duration) -> Result<Pruned, DbErr> {
    let events = in_batches(
        db,
        "DELETE FROM events WHERE id IN (SELECT e.id FROM events e \
           WHERE e.created_at < now() - make_interval(secs => $1) \
             AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = e.id AND d.status <> $3) \
           LIMIT $2 FOR UPDATE SKIP LOCKED)",
        retention,
        Some(crate::event::DeliveryStatus::Delivered.into()),
    )
    .await?;
    let dead_jobs = in_batches(
        db,
        "DELETE FROM dead_jobs WHERE id IN (SELECT id FROM dead_jobs \
           WHERE created_at < now() - make_interval(secs => $1) LIMIT $2 FOR UPDATE SKIP LOCKED)",
        retention,
        None,
    )
    .await?;
    let schedule_runs = in_batches(
        db,
        "DELETE FROM schedule_runs WHERE id IN (SELECT id FROM schedule_runs \
           WHERE fired_at < now() - make_interval(secs => $1) LIMIT $2 FOR UPDATE SKIP LOCKED)",
        retention,
        None,
    )
    .await?;
    let workers = in_batches(
        db,
        "DELETE FROM workers WHERE id IN (SELECT id FROM workers \
           WHERE coalesce(stopped_at, last_heartbeat_at) < now() - make_interval(secs => $1) \
           LIMIT $2 FOR UPDATE SKIP LOCKED)",
        PROCESS_ROWS_KEPT,
        None,
    )
    .await?;
    let schedulers = in_batches(
        db,
        "DELETE FROM schedulers WHERE id IN (SELECT id FROM schedulers \
           WHERE coalesce(stopped_at, expires_at) < now() - make_interval(secs => $1) \
           LIMIT $2 FOR UPDATE SKIP LOCKED)",
        PROCESS_ROWS_KEPT,
        None,
    )
    .await?;
    Ok(Pruned {
        events,
        dead_jobs,
        schedule_runs,
        workers,
        schedulers,
    })
}
