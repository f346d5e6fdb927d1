//! One instance's executions and their lazy, exact timeline: at most `max_running` RUNNING,
//! the rest PENDING and started oldest first at the instant a slot frees.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::run::{Run, Status};

/// Executions of one AMC instance, in creation order.
#[derive(Debug, Default)]
pub struct Instance {
    pub runs: Vec<Run>,
    /// Indices of PENDING/RUNNING runs, in creation order.
    active: Vec<usize>,
    /// The instant up to which the timeline has been computed.
    cursor: Option<DateTime<Utc>>,
    /// Highest PENDING+RUNNING count ever seen.
    pub peak_active: usize,
    /// Highest RUNNING count ever seen.
    pub peak_running: usize,
}

impl Instance {
    /// Plays the timeline forward to `now`: completions at their own instants free slots,
    /// which PENDING runs take at that same instant.
    pub fn advance(&mut self, now: DateTime<Utc>, max_running: usize, duration: Duration) {
        let mut cur = self.cursor.unwrap_or(now).min(now);
        loop {
            self.fill(cur, max_running, duration);
            let next = self
                .active
                .iter()
                .filter_map(|&i| self.runs[i].ending.as_ref().map(|e| e.at))
                .min();
            match next {
                Some(t) if t <= now => {
                    for &i in &self.active {
                        if self.runs[i].ending.as_ref().is_some_and(|e| e.at == t) {
                            self.runs[i].finish();
                        }
                    }
                    self.prune();
                    cur = t;
                }
                _ => break,
            }
        }
        self.fill(now, max_running, duration);
        self.cursor = Some(now.max(self.cursor.unwrap_or(now)));
    }

    /// Adds a PENDING run (call [`Instance::advance`] to its creation time before, and again
    /// after, so it takes a free slot at that same instant).
    pub fn push(&mut self, run: Run) -> usize {
        self.runs.push(run);
        let idx = self.runs.len() - 1;
        self.active.push(idx);
        self.peak_active = self.peak_active.max(self.active.len());
        idx
    }

    /// Cancels run `idx` at `now` when active, freeing its slot; returns its status otherwise.
    pub fn cancel(
        &mut self,
        idx: usize,
        now: DateTime<Utc>,
        max_running: usize,
        duration: Duration,
    ) -> Result<(), Status> {
        let status = self.runs[idx].status;
        if !status.is_active() {
            return Err(status);
        }
        self.runs[idx].cancel(now);
        self.prune();
        self.fill(now, max_running, duration);
        Ok(())
    }

    /// RUNNING count right now.
    pub fn running(&self) -> usize {
        self.active
            .iter()
            .filter(|&&i| self.runs[i].status == Status::Running)
            .count()
    }

    fn fill(&mut self, at: DateTime<Utc>, max_running: usize, duration: Duration) {
        let mut running = self.running();
        for &i in &self.active {
            if running >= max_running {
                break;
            }
            if self.runs[i].status == Status::Pending {
                self.runs[i].start(at, duration);
                running += 1;
            }
        }
        self.peak_running = self.peak_running.max(running);
    }

    fn prune(&mut self) {
        let runs = &self.runs;
        // A status detour keeps a finished run on the timeline until its final status.
        self.active
            .retain(|&i| runs[i].status.is_active() || runs[i].ending.is_some());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::{CreateContext, parse_create};

    const D: Duration = Duration::from_secs(10);

    fn t(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_780_000_000 + secs, 0).expect("valid")
    }

    fn run(at: DateTime<Utc>) -> Run {
        let spec = parse_create(
            br#"{"workflow":{"sqlQuery":"SELECT 1"}}"#,
            &CreateContext::adhoc(at),
        )
        .expect("valid");
        Run::new("inst", spec, at)
    }

    fn statuses(inst: &Instance) -> Vec<&'static str> {
        inst.runs.iter().map(|r| r.status.as_str()).collect()
    }

    #[test]
    fn queue_drains_at_exact_instants() {
        let mut inst = Instance::default();
        for _ in 0..3 {
            inst.advance(t(0), 2, D);
            inst.push(run(t(0)));
        }
        inst.advance(t(0), 2, D);
        assert_eq!(statuses(&inst), ["RUNNING", "RUNNING", "PENDING"]);
        assert_eq!(inst.peak_active, 3);
        // Much later, in one step: the third started at t=10 and ended at t=20.
        inst.advance(t(25), 2, D);
        assert_eq!(statuses(&inst), ["SUCCEEDED", "SUCCEEDED", "SUCCEEDED"]);
        assert_eq!(inst.runs[0].last_updated, t(10));
        assert_eq!(inst.runs[2].last_updated, t(20));
    }

    #[test]
    fn cancel_frees_a_slot_and_zero_duration_completes() {
        let mut inst = Instance::default();
        inst.advance(t(0), 1, D);
        inst.push(run(t(0)));
        inst.push(run(t(0)));
        inst.advance(t(3), 1, D);
        assert!(inst.cancel(0, t(3), 1, D).is_ok());
        assert_eq!(statuses(&inst), ["CANCELLED", "RUNNING"]);
        assert_eq!(inst.runs[1].last_updated, t(3));
        assert_eq!(inst.cancel(0, t(4), 1, D), Err(Status::Cancelled));
        inst.advance(t(4), 1, Duration::ZERO);
        inst.push(run(t(4)));
        inst.advance(t(13), 1, Duration::ZERO);
        assert_eq!(statuses(&inst), ["CANCELLED", "SUCCEEDED", "SUCCEEDED"]);
    }

    #[test]
    fn timeout_fails_a_long_run() {
        let mut inst = Instance::default();
        let spec = parse_create(
            br#"{"workflow":{"sqlQuery":"SELECT 1"},"workflowExecutionTimeoutSeconds":5}"#,
            &CreateContext::adhoc(t(0)),
        )
        .expect("valid");
        inst.advance(t(0), 1, D);
        inst.push(Run::new("inst", spec, t(0)));
        inst.advance(t(6), 1, D);
        assert_eq!(statuses(&inst), ["FAILED"]);
        assert!(inst.runs[0].status_reason.is_some());
    }
}
