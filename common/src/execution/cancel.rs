//! A user's request to cancel a run (CONTRACT step 10).

use super::row::COLUMNS;
use super::store::{Change, transition_in};
use super::{ExecutionRow, Status, find_for_user};
use crate::ids::{ExecutionId, UserId};
use sea_orm::{DatabaseConnection, DbBackend, DbErr, FromQueryResult, Statement, TransactionTrait};

#[derive(Debug)]
pub enum CancelOutcome {
    /// It was queued: cancelled at once.
    Cancelled(ExecutionRow),
    /// It is at (or on its way to) AMC: `cancel_requested_at` is set; a worker carries
    /// the cancellation to AMC and ends the run when AMC confirms.
    Requested(ExecutionRow),
    /// It had already ended.
    Terminal(ExecutionRow),
    NotFound,
}

pub async fn request_cancel(
    db: &DatabaseConnection,
    user: UserId,
    id: ExecutionId,
) -> Result<CancelOutcome, DbErr> {
    request_cancel_because(db, user, id, "cancelled by the user").await
}

/// [`request_cancel`], with the reason its audit row records.
pub async fn request_cancel_because(
    db: &DatabaseConnection,
    user: UserId,
    id: ExecutionId,
    reason: &str,
) -> Result<CancelOutcome, DbErr> {
    let txn = db.begin().await?;
    let Some(row) = find_for_user(&txn, user, id).await? else {
        return Ok(CancelOutcome::NotFound);
    };
    if row.status.is_terminal() {
        return Ok(CancelOutcome::Terminal(row));
    }
    let change = Change::from(&[Status::Queued])
        .reason(reason)
        .set("cancel_requested_at", chrono::Utc::now());
    if let Some(row) = transition_in(&txn, id, Status::Cancelled, &change).await? {
        txn.commit().await?;
        return Ok(CancelOutcome::Cancelled(row));
    }
    let requested = ExecutionRow::find_by_statement(Statement::from_sql_and_values(
        DbBackend::Postgres,
        format!(
            "UPDATE executions SET cancel_requested_at = coalesce(cancel_requested_at, now()), updated_at = now() \
             WHERE id = $1 AND user_id = $2 AND status IN ('submitting', 'running', 'fetching') RETURNING {COLUMNS}"
        ),
        [id.into(), user.into()],
    ))
    .one(&txn)
    .await?;
    txn.commit().await?;
    match requested {
        Some(row) => Ok(CancelOutcome::Requested(row)),
        // It ended between our read and the update.
        None => match find_for_user(db, user, id).await? {
            Some(row) => Ok(CancelOutcome::Terminal(row)),
            None => Ok(CancelOutcome::NotFound),
        },
    }
}
