//! Retention of stored results (`AMP_RESULTS_RETENTION`), a scheduler duty: results of runs
//! that succeeded longer ago than the retention are removed from the result store; the run
//! keeps its row, with `result_location` cleared and `results_expired_at` set, so its
//! results answer 410. Runs are taken in bounded batches, oldest first, with
//! `FOR UPDATE SKIP LOCKED`, so several scheduler replicas share the work without waiting
//! on each other. A batch's rows change in the transaction that holds them while their
//! objects are deleted: a failed delete leaves them untouched for the next pass, and a
//! crash between the deletes and the commit only means the next pass deletes (nothing)
//! again and records them.

use crate::repo::stmt;
use crate::results::{ResultStore, ResultsError};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, TransactionTrait};
use std::time::Duration;

/// Runs whose results one statement expires.
const BATCH: i64 = 500;
/// Batches per pass (the rest waits for the next pass).
const MAX_BATCHES: usize = 20;

#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    #[error(transparent)]
    Db(#[from] DbErr),
    #[error(transparent)]
    Results(#[from] ResultsError),
}

/// One pass: removes the results stored longer ago than `retention`; returns how many.
pub async fn expire_results(
    db: &DatabaseConnection,
    store: &ResultStore,
    retention: Duration,
) -> Result<u64, RetentionError> {
    let mut total = 0;
    for _ in 0..MAX_BATCHES {
        let txn = db.begin().await?;
        let expired = txn
            .query_all_raw(stmt(
                "WITH due AS (SELECT id, result_location FROM executions \
                   WHERE result_location IS NOT NULL \
                     AND completed_at < now() - make_interval(secs => $1) \
                   ORDER BY completed_at LIMIT $2 FOR UPDATE SKIP LOCKED) \
                 UPDATE executions e SET result_location = NULL, results_expired_at = now(), \
                   updated_at = now() \
                 FROM due WHERE e.id = due.id RETURNING due.result_location",
                [retention.as_secs_f64().into(), BATCH.into()],
            ))
            .await?;
        for row in &expired {
            let location: String = row.try_get("", "result_location")?;
            store.delete(&location).await?;
        }
        txn.commit().await?;
        let n = expired.len() as u64;
        total += n;
        if n < BATCH as u64 {
            break;
        }
    }
    Ok(total)
}
