//! The execution state machine: `queued → submitting → running → fetching → succeeded`,
//! and `→ failed | cancelled` from any non-terminal state. Rows move only by
//! compare-and-set; every transition writes its audit row and its event in the same
//! transaction (DESIGN inv. 2 and 6).

mod admission;
mod backoff;
mod batch;
mod cancel;
mod create;
mod detail;
mod list;
mod refresh;
mod request;
mod retry;
mod row;
mod status;
mod steps;
mod store;
mod sweep;
mod target;
mod transitions;
mod waiting;

pub use admission::{Admit, account_of_instance, admit_account};
pub(crate) use admission::{RESERVE_SQL, USED_TODAY_SQL};
pub use backoff::{poll_interval, retry_delay};
pub use batch::{AfterCommit, BatchLimits, CREATE_LIMITS, CreateBatcher, RunError, RunRequest};
pub(crate) use batch::{insert_batch, queued_row_of, records_of};
pub use cancel::{CancelOutcome, request_cancel, request_cancel_because};
pub use create::{CreateError, Created, Links, NewExecution, create};
pub use detail::{Detail, detail};
pub use list::{ListFilter, list, list_statement};
pub use refresh::{Refreshed, refresh_checks};
pub use request::{Rendered, render_run, request_hash};
pub use retry::{RetryError, retry};
pub use row::ExecutionRow;
pub(crate) use row::error_json;
pub use status::{ErrorCode, ExecutionStatus, Status, TriggeredBy};
pub use steps::{
    DueStep, Reschedule, Rescheduled, Standing, Submitted, begin_submissions, mark_running_many,
    read_due, reschedule_many, standings,
};
pub use store::{TransitionRow, current_due, find, find_for_user, transitions};
pub use sweep::{Overdue, resume_after_reauth};
pub use target::Target;
pub use transitions::{
    Ending, Held, Stored, Unsubmitted, begin_submission, bring_forward, cancel_unsubmitted, end,
    lease, mark_fetching, release_lease, renew_lease, succeed,
};
pub use waiting::{WaitingReason, next_local_midnight, with_waiting};

use chrono::{DateTime, Utc};

/// Now, truncated to Postgres' microsecond precision, so a value read back from the
/// database compares equal to the one written (job `due` values rely on it).
pub fn now_micros() -> DateTime<Utc> {
    truncate_micros(Utc::now())
}

/// Truncates an instant to microseconds.
pub fn truncate_micros(t: DateTime<Utc>) -> DateTime<Utc> {
    let micros = t.timestamp_micros();
    DateTime::from_timestamp_micros(micros).unwrap_or(t)
}
