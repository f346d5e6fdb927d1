//! Schedules: cron rules in the user's time zone that turn into runs, exactly once per
//! tick with any number of scheduler replicas, each tick accounted for in the run history.
//!
//! - [`rule`]: the cron rule and its ticks (croner, Vixie-cron DST semantics);
//! - [`window`]: the time window a fire resolves to;
//! - [`policy`]: overlap and catch-up policies, and how each tick ended up;
//! - [`plan`]: what a pass does for one due schedule, decided without I/O;
//! - [`store`]: the `schedules` table (create, edit, pause, resume, preview);
//! - [`fire`]: a fire pass (`FOR UPDATE SKIP LOCKED`, one transaction per batch), the
//!   scheduler replicas' lives, and what a run's end does to its schedule;
//! - [`history`]: the run history, per-schedule metrics, and triggers by hand.

pub mod fire;
pub mod history;
pub mod plan;
pub mod policy;
pub mod rule;
pub mod store;
pub mod window;

pub(crate) use fire::on_run_ended;
pub use fire::{FirePass, Probe, Replica, Started, fire_due, probe};
pub use history::{
    RunEntry, ScheduleMetrics, TriggerError, metrics as schedule_metrics, runs, trigger,
};
pub use policy::{CatchUp, CatchUpPolicy, Overlap, RunOutcome};
pub use rule::CronRule;
pub use store::{
    PreviewFire, ScheduleError, SchedulePatch, ScheduleRow, ScheduleSpec, create, delete, get,
    list, pause, preview, resume, update,
};
pub use window::{WeekStart, WindowRule, WindowRuleError};

/// The channel a schedule change (or the end of a run a tick waits for) is announced on.
pub const CHANNEL: &str = "amp_schedules";
