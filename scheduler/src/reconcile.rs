//! One reconcile pass: Postgres says what is due (in the one statement a replica makes per
//! interval while idle); push a job for each piece of work whose job is missing or late.
//! Pushing a twin is harmless: handlers move rows by compare-and-set on `(status,
//! next_check_at)`.

use crate::Scheduler;
use chrono::{DateTime, Utc};
use common::collection::advance_stalled;
use common::execution::ExecutionStatus;
use common::ids::{DeliveryId, ExecutionId};
use common::jobs::{AdmitJob, CancelJob, DeliverJob, Step, StepKind, enqueue_steps};
use common::reconcile::{Look, look};
use common::telemetry::metrics::ReconcileLabels;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

/// What a pass re-enqueued.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Reconciled {
    pub steps: usize,
    pub admissions: usize,
    pub cancels: usize,
    /// Collections that stood still and were moved on.
    pub collections: usize,
    /// Webhook deliveries whose job, or whose attempt's worker, was lost.
    pub deliveries: usize,
    /// The dispatchers were woken: deliveries never claimed have waited past the grace.
    pub woke_dispatchers: bool,
}

impl Reconciled {
    pub fn total(&self) -> usize {
        self.steps
            + self.admissions
            + self.cancels
            + self.collections
            + self.deliveries
            + usize::from(self.woke_dispatchers)
    }
}

/// At most this many rows of each kind per pass, so a huge backlog is fed gradually.
const BATCH: u64 = 5_000;

/// A step (or delivery) re-pushed once is not re-pushed again for this long: if it is still overdue,
/// the workers are behind (its twin waits in the queue), and pushing it every pass would
/// only add to the backlog. A job lost a second time is re-pushed after this.
const REPUSH_QUIET: Duration = Duration::from_secs(30);

/// The steps and webhook deliveries this process re-pushed lately, by `(id, due)`.
#[derive(Debug, Default)]
pub struct Repushes {
    steps: Quiet<(ExecutionId, DateTime<Utc>)>,
    deliveries: Quiet<(DeliveryId, DateTime<Utc>)>,
}

/// Keys seen within a quiet period.
#[derive(Debug)]
struct Quiet<K>(Mutex<HashMap<K, Instant>>);

impl<K> Default for Quiet<K> {
    fn default() -> Self {
        Self(Mutex::default())
    }
}

impl<K: std::hash::Hash + Eq + Copy> Quiet<K> {
    /// Whether each item's key was not seen within `quiet` of `now` (recording it now);
    /// entries older than `quiet` are forgotten.
    fn fresh<T>(
        &self,
        items: Vec<T>,
        key: impl Fn(&T) -> K,
        now: Instant,
        quiet: Duration,
    ) -> Vec<T> {
        let mut at = self.0.lock().unwrap_or_else(|e| e.into_inner());
        at.retain(|_, t| now.duration_since(*t) < quiet);
        items
            .into_iter()
            .filter(|item| match at.entry(key(item)) {
                Entry::Occupied(_) => false,
                Entry::Vacant(v) => {
                    v.insert(now);
                    true
                }
            })
            .collect()
    }
}

impl Repushes {
    /// The overdue steps not re-pushed within `quiet` of `now`, which it records as
    /// re-pushed now.
    pub fn fresh(
        &self,
        overdue: Vec<(ExecutionId, ExecutionStatus, DateTime<Utc>)>,
        now: Instant,
        quiet: Duration,
    ) -> Vec<(ExecutionId, ExecutionStatus, DateTime<Utc>)> {
        self.steps
            .fresh(overdue, |(id, _, due)| (*id, *due), now, quiet)
    }

    /// The overdue deliveries not re-pushed within `quiet` of `now`.
    pub fn fresh_deliveries(
        &self,
        overdue: Vec<(DeliveryId, DateTime<Utc>)>,
        now: Instant,
        quiet: Duration,
    ) -> Vec<(DeliveryId, DateTime<Utc>)> {
        self.deliveries.fresh(overdue, |d| *d, now, quiet)
    }
}

/// One pass: one look at Postgres (the replica's heartbeat, the schedules' probe handed to
/// the fire loop, and the overdue work), then a job pushed for each piece of overdue work.
pub async fn once(s: &Scheduler) -> anyhow::Result<Reconciled> {
    let mut out = Reconciled::default();
    // A step job fires within milliseconds of its due time; one that is late by a whole
    // reconcile interval (at least a second) is presumed lost.
    let grace = s.config.reconcile_interval.max(Duration::from_secs(1));
    let replica = s.replica.get();
    let Look {
        probe,
        overdue,
        stalled_collections,
        overdue_deliveries,
        deliveries_waiting,
    } = look(&s.db, &replica, grace, BATCH).await?;
    if !probe.alive {
        // Its row was removed (pruned after a very long stall): alive from now.
        s.replica.register_again(&s.db).await;
    }
    s.probes.send_replace(Some(probe));
    let now = SystemTime::now();
    let steps: Vec<Step> = s
        .repushes
        .fresh(overdue.steps, Instant::now(), REPUSH_QUIET)
        .into_iter()
        .filter_map(|(id, status, due)| {
            StepKind::of_status(status).map(|kind| Step {
                kind,
                execution_id: id,
                due: Some(due),
                at: now,
                trace: None,
            })
        })
        .collect();
    out.steps = steps.len();
    enqueue_steps(&s.producer, &steps).await?;
    // One admission per account that has queued runs (admission covers the account).
    let admits: Vec<AdmitJob> = overdue
        .queued_instances
        .into_iter()
        .map(|instance_id| AdmitJob { instance_id })
        .collect();
    if !admits.is_empty() {
        out.admissions = admits.len();
        s.producer.enqueue_batch(&admits).await?;
    }
    // Cancellations of admitted runs that never reached AMC.
    let cancels: Vec<CancelJob> = overdue
        .unsubmitted_cancels
        .into_iter()
        .map(|id| CancelJob::new(id, None))
        .collect();
    if !cancels.is_empty() {
        out.cancels = cancels.len();
        s.producer.enqueue_batch(&cancels).await?;
    }
    if !stalled_collections.is_empty() {
        let moved = advance_stalled(&s.db, &stalled_collections).await?;
        out.collections = moved.len();
        let admits: Vec<AdmitJob> = moved
            .iter()
            .filter_map(|a| a.instance)
            .map(|instance_id| AdmitJob { instance_id })
            .collect();
        if !admits.is_empty() {
            s.producer.enqueue_batch(&admits).await?;
        }
    }
    let deliveries: Vec<DeliverJob> = s
        .repushes
        .fresh_deliveries(overdue_deliveries, Instant::now(), REPUSH_QUIET)
        .into_iter()
        .map(|(delivery_id, due)| DeliverJob { delivery_id, due })
        .collect();
    if !deliveries.is_empty() {
        out.deliveries = deliveries.len();
        s.producer.enqueue_batch(&deliveries).await?;
    }
    if deliveries_waiting {
        common::webhook::delivery::wake_dispatchers(&s.db).await?;
        out.woke_dispatchers = true;
    }
    let count = |kind, n: usize| {
        s.metrics
            .reconciled
            .get_or_create(&ReconcileLabels { kind })
            .inc_by(n as u64);
    };
    count("step", out.steps);
    count("admission", out.admissions);
    count("cancel", out.cancels);
    count("collection", out.collections);
    count("delivery", out.deliveries);
    count("delivery_wake", usize::from(out.woke_dispatchers));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_is_re_pushed_once_per_quiet_period() {
        let r = Repushes::default();
        let (a, b) = (ExecutionId::new(), ExecutionId::new());
        let due = Utc::now();
        let t0 = Instant::now();
        let quiet = Duration::from_secs(30);
        let step = |id| (id, ExecutionStatus::Running, due);
        assert_eq!(r.fresh(vec![step(a)], t0, quiet).len(), 1);
        // Still overdue a pass later: its twin is queued, not lost.
        let later = t0 + Duration::from_secs(5);
        let again = r.fresh(vec![step(a), step(b)], later, quiet);
        assert_eq!(again, vec![step(b)]);
        // A step that moved on is a new step.
        let moved = (
            a,
            ExecutionStatus::Running,
            due + chrono::Duration::seconds(15),
        );
        assert_eq!(r.fresh(vec![moved], later, quiet), vec![moved]);
        // After the quiet period a step still overdue is pushed again.
        let much_later = t0 + Duration::from_secs(31);
        assert_eq!(r.fresh(vec![step(a)], much_later, quiet), vec![step(a)]);
    }
}
