//! The fire loop: sleeps until the earliest `next_run_at`, or until a schedule changes
//! (`LISTEN amp_schedules`), or until the reconciler's next look (once per
//! `AMP_RECONCILE_INTERVAL`, which also carries the replica's heartbeat); then fires what
//! is due in batches and pushes the submit jobs after each commit. While nothing is due
//! and nothing changes it makes no query of its own: the look is the replica's one
//! statement per interval.

use crate::Scheduler;
use common::execution::{CancelOutcome, request_cancel_because};
use common::jobs::{CancelJob, SubmitJob};
use common::schedule::{self, FirePass, Probe, Replica, RunOutcome};
use common::telemetry::metrics::{FireLabels, ScheduleLabels};
use sea_orm::DatabaseConnection;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, watch};

/// Schedules one pass takes (one transaction).
pub const BATCH: usize = 1_000;

/// This process's replica: registered at start, and again if its row disappears (pruned
/// after a very long stall).
#[derive(Debug)]
pub struct CurrentReplica(Mutex<Replica>);

impl CurrentReplica {
    pub fn new(r: Replica) -> Self {
        Self(Mutex::new(r))
    }

    pub fn get(&self) -> Replica {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Registers anew, alive from now (keeps the old identity if that fails).
    pub async fn register_again(&self, db: &DatabaseConnection) {
        let heartbeat = self.get().heartbeat;
        match Replica::register(db, heartbeat).await {
            Ok(r) => {
                tracing::info!(replica = %r.id, "scheduler replica registered again");
                *self.0.lock().unwrap_or_else(|e| e.into_inner()) = r;
            }
            Err(e) => tracing::warn!(error = %e, "could not register the replica again"),
        }
    }
}

/// What the loop does next.
enum Next {
    /// Probe first (after a wake-up or a pass).
    Probe,
    /// Act on this probe (the reconciler's look).
    Known(Probe),
    /// A tick is due: fire.
    Fire,
}

/// Runs the fire loop until `stop` turns true; records the replica's stop.
pub async fn run(s: Arc<Scheduler>, mut stop: watch::Receiver<bool>) {
    let wake = Arc::new(Notify::new());
    let listener = tokio::spawn(common::db::listen::wake_on_notify(
        s.config.database_url.clone(),
        schedule::CHANNEL,
        "schedule changes",
        wake.clone(),
    ));
    let mut looks = s.probes.subscribe();
    let mut next = Next::Probe;
    while !*stop.borrow() {
        let probe = match std::mem::replace(&mut next, Next::Probe) {
            Next::Fire => {
                if fire_all(&s).await == 0 {
                    // Another replica holds what is due: give it a moment.
                    if pause(Some(Duration::from_millis(50)), &wake, &mut stop).await {
                        break;
                    }
                }
                continue;
            }
            Next::Known(p) => p,
            Next::Probe => match schedule::probe(&s.db, &s.replica.get()).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(error = %e, "schedule probe failed; trying again shortly");
                    if pause(Some(Duration::from_secs(1)), &wake, &mut stop).await {
                        break;
                    }
                    continue;
                }
            },
        };
        s.metrics.due.set(probe.due);
        if probe.has_work() {
            next = Next::Fire;
            continue;
        }
        let until_next = probe
            .next
            .map(|n| (n - probe.now).to_std().unwrap_or_default());
        tokio::select! {
            _ = sleep(until_next) => next = Next::Fire,
            _ = wake.notified() => {}
            r = looks.changed() => match r {
                Ok(()) => {
                    if let Some(p) = looks.borrow_and_update().clone() {
                        next = Next::Known(p);
                    }
                }
                Err(_) => break,
            },
            r = stop.changed() => if r.is_err() || *stop.borrow() { break },
        }
    }
    listener.abort();
    let replica = s.replica.get();
    match replica.stop(&s.db).await {
        Ok(()) => tracing::info!(replica = %replica.id, "scheduler replica stopped"),
        Err(e) => tracing::warn!(error = %e, "could not record the replica's stop"),
    }
}

/// Sleeps for `d`, or for ever when `None`.
async fn sleep(d: Option<Duration>) {
    match d {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

/// Sleeps for `d`, or until woken; `true` when the loop should stop.
async fn pause(d: Option<Duration>, wake: &Notify, stop: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = sleep(d) => false,
        _ = wake.notified() => false,
        r = stop.changed() => r.is_err() || *stop.borrow(),
    }
}

/// Fires batches until one comes back short; returns the schedules taken.
async fn fire_all(s: &Scheduler) -> usize {
    let replica = s.replica.get();
    let mut taken = 0;
    loop {
        match schedule::fire_due(&s.db, &replica, BATCH).await {
            Ok(pass) => {
                taken += pass.taken;
                let full = pass.taken >= BATCH;
                after_commit(s, pass).await;
                if !full {
                    return taken;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "fire pass failed; trying again next wake-up");
                return taken;
            }
        }
    }
}

/// Pushes the submit jobs of a committed pass, carries out its cancellations, and records
/// its figures. A lost push is covered by the reconciler (the runs are queued).
async fn after_commit(s: &Scheduler, pass: FirePass) {
    if !pass.started.is_empty() {
        let jobs: Vec<SubmitJob> = pass
            .started
            .iter()
            .map(|r| SubmitJob::new(r.execution_id, None))
            .collect();
        if let Err(e) = s.producer.enqueue_batch(&jobs).await {
            tracing::warn!(runs = jobs.len(), error = %e, "could not enqueue fired runs; the reconciler will pick them up");
        }
        let now = chrono::Utc::now();
        for r in pass.started.iter().filter(|r| r.on_time) {
            let lag = (now - r.scheduled_for).num_microseconds().unwrap_or(0) as f64 / 1e6;
            s.metrics.fire_lag.observe(lag.max(0.0));
        }
    }
    let fires = |outcome, n: usize| {
        if n > 0 {
            s.metrics
                .fires
                .get_or_create(&FireLabels { outcome })
                .inc_by(n as u64);
        }
    };
    fires(RunOutcome::Started.as_str(), pass.started.len());
    fires(RunOutcome::SkippedOverlap.as_str(), pass.skipped);
    fires(RunOutcome::Buffered.as_str(), pass.buffered);
    fires(RunOutcome::Invalid.as_str(), pass.invalid);
    for (id, n) in &pass.missed {
        s.metrics
            .missed
            .get_or_create(&ScheduleLabels {
                schedule_id: id.to_string(),
            })
            .inc_by(*n as u64);
    }
    for (user, id) in pass.cancels {
        let reason = "cancelled by its schedule: a newer tick started (overlap cancel_other)";
        match request_cancel_because(&s.db, user, id, reason).await {
            Ok(CancelOutcome::Requested(row)) => {
                if let Err(e) = s.producer.enqueue(&CancelJob::new(row.id, None)).await {
                    tracing::warn!(execution.id = %id, error = %e, "could not enqueue a cancellation; the run's next step carries it out");
                }
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(execution.id = %id, error = %e, "could not cancel the older run")
            }
        }
    }
    if pass.taken > 0 {
        tracing::debug!(
            taken = pass.taken,
            started = pass.started.len(),
            skipped = pass.skipped,
            buffered = pass.buffered,
            missed = pass.missed.iter().map(|m| m.1).sum::<i64>(),
            "fired due schedules"
        );
    }
}
