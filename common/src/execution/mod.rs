//! The execution state machine: `queued → submitting → running → fetching → succeeded`,
//! and `→ failed | cancelled` from any non-terminal state. Rows move only by
//! compare-and-set; every transition writes its audit row and its event in the same
//! transaction (DESIGN inv. 2 and 6).

mod admission;
mod backoff;
mod batch;
mod cancel;
mod create;
mod request;
mod row;
mod status;
mod steps;
mod store;
mod waiting;

pub use admission::{account_of_instance, admit_account};
pub use backoff::{poll_interval, retry_delay};
pub use batch::{AfterCommit, BatchLimits, CREATE_LIMITS, CreateBatcher, RunError, RunRequest};
pub use cancel::{CancelOutcome, request_cancel};
pub use create::{CreateError, Created, NewExecution, create};
pub use request::{Rendered, render_run, request_hash};
pub use row::ExecutionRow;
pub use status::{Status, TriggeredBy};
pub use steps::{DueStep, Reschedule, Rescheduled, TokenState, read_due, reschedule_many};
pub use store::{
    Change, TransitionRow, find, find_for_user, overdue_steps, touch, transition, transition_in,
    transitions,
};
pub use waiting::{
    ACCOUNT_CAP, DAILY_QUOTA, INSTANCE_CAP, QUEUED_BEHIND_OLDER, next_local_midnight, with_waiting,
};

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
