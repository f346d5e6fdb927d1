//! The end of a batch, inside the transaction that ends one of its runs: when that was
//! its last run still going, the batch gets its final status and `completed_at`, and
//! records `batch.completed` with its counts, exactly once.
//!
//! The transactions ending a batch's runs take turns on the batch row's lock. Under READ
//! COMMITTED each statement after the lock reads every run ended by a transaction that
//! committed before it, so the last run's transaction sees no other run going; and the
//! update is a compare-and-set on `completed_at IS NULL`, so no second event is written.

use super::row::BatchStatus;
use super::store::find_in;
use crate::event::{EventType, NewEvent};
use crate::execution::ExecutionStatus;
use crate::ids::{BatchId, UserId};
use crate::repo::stmt;
use sea_orm::{ConnectionTrait, DbErr};

/// Ends batch `id` if none of its runs is still going (called by every terminal
/// transition of a batch run, in its transaction).
pub(crate) async fn on_run_ended<C: ConnectionTrait>(txn: &C, id: BatchId) -> Result<(), DbErr> {
    // The lock; an ended batch has nothing left to do.
    let open = txn
        .query_one_raw(stmt(
            "SELECT user_id FROM batches WHERE id = $1 AND completed_at IS NULL FOR NO KEY UPDATE",
            [id.into()],
        ))
        .await?;
    let Some(open) = open else {
        return Ok(());
    };
    let user: UserId = open.try_get("", "user_id")?;
    let sql = format!(
        "UPDATE batches b SET completed_at = clock_timestamp(), updated_at = now(), \
           status = CASE WHEN b.status = '{cancelled}' THEN b.status \
             WHEN EXISTS (SELECT 1 FROM executions e WHERE e.batch_id = b.id AND e.status <> '{run_succeeded}') \
               THEN '{failed}' ELSE '{succeeded}' END \
         WHERE b.id = $1 AND b.completed_at IS NULL \
           AND NOT EXISTS (SELECT 1 FROM executions e WHERE e.batch_id = b.id AND e.status NOT IN {ended}) \
         RETURNING b.status",
        cancelled = BatchStatus::Cancelled,
        failed = BatchStatus::Failed,
        succeeded = BatchStatus::Succeeded,
        run_succeeded = ExecutionStatus::Succeeded,
        ended = ExecutionStatus::ENDED_SQL,
    );
    if txn.query_one_raw(stmt(&sql, [id.into()])).await?.is_none() {
        return Ok(());
    }
    let Some(batch) = find_in(txn, user, id).await? else {
        return Ok(());
    };
    crate::event::record(
        txn,
        NewEvent {
            user,
            event_type: EventType::BatchCompleted,
            subject: id.into(),
            payload: batch.public_json(),
        },
    )
    .await
}
