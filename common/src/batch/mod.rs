//! Batch runs: one workflow's SQL over up to [`MAX_INSTANCES`] of the user's instances,
//! each with its own parameters. Each instance's run is a normal execution
//! (`triggered_by: batch`, on that instance, under its caps, admitted as an interactive
//! run), written in the transaction that creates the batch; the batch needs no process of
//! its own.
//!
//! - [`spec`]: what a batch asks for, and the checks that name the bad field;
//! - [`row`]: the row, its status and progress counts, and the shape the API shows;
//! - [`store`]: create (the batch and its runs in one transaction), read, list, cancel;
//! - [`end`]: the end of a run, in the transaction that ends it: the batch's end (once,
//!   by compare-and-set on its row) with its `batch.completed` event.

pub mod end;
pub mod row;
pub mod spec;
pub mod store;

pub(crate) use end::on_run_ended;
pub use row::{BatchRow, BatchStatus};
pub use spec::{BatchError, BatchInstance, BatchSpec, MAX_INSTANCES};
pub use store::{Changed, Created, cancel, create, get, list};
