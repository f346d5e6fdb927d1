//! Data collections (backfills): one workflow run for every window of a historical range,
//! oldest first, at most `max_concurrency` at once and never past the instance's and
//! account's caps, failed windows retried, paused, resumed, cancelled (at AMC too) and
//! reopened. Each window's run is a normal execution (`triggered_by: collection`), so
//! every engine guarantee holds for it; the collection needs no process of its own.
//!
//! - [`window`]: cutting a range into windows, default ranges, the checks of a range;
//! - [`row`]: the rows, their statuses and the shapes the API shows;
//! - [`store`]: create (with its windows and first runs, in one transaction), read, pause,
//!   resume, cancel, retry-failed, and the schedule backfill;
//! - [`advance`]: what the end of a window's run does (in the transaction that ends it):
//!   the window's outcome, a retry, the next windows, the collection's end and its event;
//! - [`results`]: the succeeded windows' rows, combined.

pub mod advance;
pub mod results;
pub mod row;
pub mod store;
pub mod window;

pub(crate) use advance::on_run_ended;
pub use advance::{Advanced, advance_stalled};
pub use results::{CombinedError, CombinedPage, PageAt, combined_csv, combined_page};
pub use row::{
    CollectionRow, CollectionStatus, Counts, FAILED_WINDOWS_LISTED, ShownStatus, WindowRow,
    WindowStatus, Windows,
};
pub use store::{
    BackfillSpec, Changed, CollectionError, CollectionSpec, Created, WindowQuery, backfill, cancel,
    create, get, list, pause, plan, resume, retry_failed, windows as window_page,
};
pub use window::{Dates, Granularity, Limits, RangeError, WindowGranularity, default_range};
