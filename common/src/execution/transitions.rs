//! Every move a step makes on an execution row, each a named function holding its SQL and
//! its compare-and-set guard. A step works on the row it [`lease`]d (or was handed by the
//! batched read of status checks): [`Held`] says which row, in which status, at which
//! `next_check_at`; every move is guarded by exactly that, so a twin or a late step
//! finds the row moved and gets `None`, and does nothing.

use super::store::{Change, touch, transition};
use super::{ErrorCode, ExecutionRow, ExecutionStatus as Status, now_micros};
use crate::ids::ExecutionId;
use chrono::{DateTime, Utc};
use sea_orm::{DatabaseConnection, DbErr};
use std::time::Duration;

/// The row a step holds: its id, its status and the `next_check_at` the step owns (the
/// job's `due`, or the lease the step took).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    pub id: ExecutionId,
    pub status: Status,
    pub at: DateTime<Utc>,
}

impl Held {
    fn change(&self) -> Change {
        Change::from(&[self.status]).due(Some(self.at))
    }
}

fn after(d: Duration) -> DateTime<Utc> {
    now_micros() + chrono::Duration::from_std(d).unwrap_or_default()
}

/// Leases the row for a step in `status`: `next_check_at` moves from `due` to now +
/// `lease` (a job that names no `due` takes a row whose check is due or unset). `None`
/// when a twin already took, or finished, this step.
pub async fn lease(
    db: &DatabaseConnection,
    id: ExecutionId,
    status: Status,
    due: Option<DateTime<Utc>>,
    lease: Duration,
) -> Result<Option<(ExecutionRow, Held)>, DbErr> {
    let until = after(lease);
    let change = Change::from(&[status]).set("next_check_at", until);
    let change = match due {
        Some(due) => change.due(Some(due)),
        None => change.guard("next_check_at IS NULL OR next_check_at <= now()"),
    };
    Ok(touch(db, id, &change).await?.map(|row| {
        let held = Held {
            id,
            status,
            at: until,
        };
        (row, held)
    }))
}

/// Moves a held lease forward by `lease`; `None` if the row moved meanwhile (another
/// worker holds it now).
pub async fn renew_lease(
    db: &DatabaseConnection,
    held: &Held,
    lease: Duration,
) -> Result<Option<Held>, DbErr> {
    let until = after(lease);
    let change = held.change().set("next_check_at", until);
    Ok(touch(db, held.id, &change)
        .await?
        .map(|_| Held { at: until, ..*held }))
}

/// Gives a held lease back after a step failed on our side (a store or queue error): the
/// check is due again at `due` (the job's, or now), so the queue's retry of the same job
/// takes the row at once instead of waiting for the lease to run out. `false` if the row
/// moved meanwhile.
pub async fn release_lease(
    db: &DatabaseConnection,
    held: &Held,
    due: Option<DateTime<Utc>>,
) -> Result<bool, DbErr> {
    let change = held
        .change()
        .set("next_check_at", due.unwrap_or_else(now_micros));
    Ok(touch(db, held.id, &change).await?.is_some())
}

/// Records that the AMC create call is about to be made (`submit_started_at`), unless the
/// user asked to cancel first. `None`: cancelled meanwhile (or moved).
pub async fn begin_submission(
    db: &DatabaseConnection,
    held: &Held,
) -> Result<Option<ExecutionRow>, DbErr> {
    let change = held
        .change()
        .guard("cancel_requested_at IS NULL")
        .set("submit_started_at", now_micros());
    touch(db, held.id, &change).await
}

/// AMC reports SUCCEEDED: the run moves to `fetching`, its fetch due at `at`.
pub async fn mark_fetching(
    db: &DatabaseConnection,
    held: &Held,
    at: DateTime<Utc>,
) -> Result<Option<ExecutionRow>, DbErr> {
    let change = held
        .change()
        .set("next_check_at", at)
        .set("attempt", 0)
        .reason("AMC reports SUCCEEDED");
    transition(db, held.id, Status::Fetching, &change).await
}

/// Where a run's result was stored.
#[derive(Debug, Clone)]
pub struct Stored {
    pub rows: u64,
    pub columns: serde_json::Value,
    pub location: String,
}

/// The result is stored: the run `succeeded`.
pub async fn succeed(
    db: &DatabaseConnection,
    held: &Held,
    stored: &Stored,
) -> Result<Option<ExecutionRow>, DbErr> {
    let change = held
        .change()
        .set("row_count", stored.rows as i64)
        .set("result_columns", stored.columns.clone())
        .set("result_location", stored.location.clone())
        .set("next_check_at", Option::<DateTime<Utc>>::None)
        .set("attempt", 0)
        .reason(format!("{} rows stored", stored.rows));
    transition(db, held.id, Status::Succeeded, &change).await
}

/// How a run ends other than by success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// Failed, with the code and the words (AMC's or LWA's, verbatim) clients see.
    Failed { code: ErrorCode, message: String },
    /// Cancelled, as the user asked (confirmed by AMC when it was there).
    Cancelled,
}

impl Ending {
    pub fn failed(code: ErrorCode, message: impl Into<String>) -> Self {
        Ending::Failed {
            code,
            message: message.into(),
        }
    }

    fn status(&self) -> Status {
        match self {
            Ending::Failed { .. } => Status::Failed,
            Ending::Cancelled => Status::Cancelled,
        }
    }
}

/// Ends the held run (`failed` or `cancelled`). The caller frees its slot when it moved.
pub async fn end(
    db: &DatabaseConnection,
    held: &Held,
    ending: &Ending,
) -> Result<Option<ExecutionRow>, DbErr> {
    let mut change = held
        .change()
        .set("next_check_at", Option::<DateTime<Utc>>::None);
    if let Ending::Failed { code, message } = ending {
        change = change
            .set("error_code", *code)
            .set("error_message", message.clone())
            .reason(format!("{code}: {message}"));
    }
    transition(db, held.id, ending.status(), &change).await
}

/// Why a run admitted but not at AMC is cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unsubmitted {
    /// The user cancelled before the AMC create call began.
    BeforeSubmission,
    /// The create call began, and listing AMC's runs showed it never arrived.
    NeverReachedAmc,
}

/// Cancels a `submitting` run that AMC does not have: `held` when a step holds it (its
/// lease must still be there), `None` for the cancel job (no lease: only a run whose
/// create call has not begun). The caller frees its slot when it moved.
pub async fn cancel_unsubmitted(
    db: &DatabaseConnection,
    id: ExecutionId,
    held: Option<&Held>,
    why: Unsubmitted,
) -> Result<Option<ExecutionRow>, DbErr> {
    let mut change = match held {
        Some(h) => h.change(),
        None => Change::from(&[Status::Submitting]),
    }
    .set("next_check_at", Option::<DateTime<Utc>>::None);
    change = match why {
        Unsubmitted::BeforeSubmission => change
            .guard("submit_started_at IS NULL")
            .reason("cancelled before submission"),
        Unsubmitted::NeverReachedAmc => {
            change.reason("cancelled: the submission in doubt never reached AMC")
        }
    };
    transition(db, id, Status::Cancelled, &change).await
}

/// A cancellation of a run at AMC: its next step (a check, or a fetch) is brought forward
/// to now, unless a step holds the row right now. Returns the row and the new due.
pub async fn bring_forward(
    db: &DatabaseConnection,
    id: ExecutionId,
    status: Status,
) -> Result<Option<(ExecutionRow, DateTime<Utc>)>, DbErr> {
    let at = now_micros();
    let change = Change::from(&[status])
        .guard("next_check_at IS NULL OR next_check_at > now()")
        .set("next_check_at", at);
    Ok(touch(db, id, &change).await?.map(|row| (row, at)))
}
