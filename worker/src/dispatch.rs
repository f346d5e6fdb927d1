//! The delivery dispatcher of a worker process: woken by `LISTEN amp_deliveries` (the
//! trigger that writes deliveries with their event notifies it), it claims the
//! deliveries due now (`FOR UPDATE SKIP LOCKED`, so among many workers one takes each)
//! and attempts them itself, each as a `webhook.deliver` job would, with no trip through
//! Redis: a fresh delivery costs one shared claim and its record. It claims only as many
//! as it has free attempt slots (`AMP_WORKER_CONCURRENCY`; a power of two of them, see
//! `delivery::claim_size`), so what it cannot start at once stays in the table for
//! another worker; while a backlog lasts it lets half its slots come back before the next
//! claim, so a claim takes many deliveries rather than one. Retries and deferrals go out
//! as delayed jobs. A lost notification costs latency, not a delivery (the scheduler's
//! reconciler wakes the dispatchers when unclaimed deliveries wait past its grace), and so
//! does a worker that dies holding claims: the reconciler re-enqueues those once their
//! lease has passed.

use crate::ctx::Ctx;
use crate::jobs::deliver;
use crate::registry::{as_job, job_span};
use common::jobs::DeliverJob;
use common::webhook::delivery::{self, Work};
use queue::Job;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// While deliveries wait (the last claim took all it asked for), how long the dispatcher
/// waits for half its attempt slots to come back before it claims with fewer: a backlog
/// is claimed a few large statements at a time, not one statement per slot as each comes
/// back.
const GATHER: Duration = Duration::from_millis(5);

/// The dispatcher's attempts in flight, which a stopping worker lets finish.
#[derive(Clone, Default)]
pub struct InFlight(TaskTracker);

impl InFlight {
    /// Resolves once no claimed attempt runs any more (and no new one can start).
    pub async fn drained(&self) {
        self.0.close();
        self.0.wait().await;
    }
}

/// Runs until `stop` is cancelled; its attempts run on `in_flight`.
pub async fn run(ctx: Ctx, stop: CancellationToken, in_flight: InFlight) {
    let wake = Arc::new(Notify::new());
    let listener = tokio::spawn(common::db::listen::wake_on_notify(
        ctx.config.database_url.clone(),
        delivery::CHANNEL,
        "webhook deliveries",
        wake.clone(),
    ));
    let slots = Arc::new(Semaphore::new(ctx.config.worker_concurrency.max(1)));
    let half = (ctx.config.worker_concurrency / 2).max(1);
    // What was due before this process listened is claimed at once.
    wake.notify_one();
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = wake.notified() => {}
        }
        // On waking, claim at once; while a backlog lasts, gather half the slots first.
        let mut want = 1;
        loop {
            let mut permits = tokio::select! {
                _ = stop.cancelled() => break,
                p = free_slots(&slots, want) => p,
            };
            let asked = delivery::claim_size(permits.len());
            if asked == 0 {
                break;
            }
            // The slots this claim does not use go back at once.
            permits.truncate(asked);
            match claim_and_attempt(&ctx, permits, &in_flight).await {
                Ok(n) if n == asked => want = half,
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "could not dispatch webhook deliveries; the reconciler will");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    break;
                }
            }
        }
    }
    listener.abort();
}

/// One free attempt slot at least (waiting for it), then up to `want` (waiting at most
/// [`GATHER`] for them), and every other one free now, up to a claim's worth.
async fn free_slots(slots: &Arc<Semaphore>, want: usize) -> Vec<OwnedSemaphorePermit> {
    let Ok(first) = slots.clone().acquire_owned().await else {
        return Vec::new();
    };
    let mut permits = vec![first];
    let until = tokio::time::Instant::now() + GATHER;
    loop {
        while permits.len() < delivery::MAX_CLAIM {
            match slots.clone().try_acquire_owned() {
                Ok(p) => permits.push(p),
                Err(_) => break,
            }
        }
        if permits.len() >= want.min(delivery::MAX_CLAIM) {
            return permits;
        }
        match tokio::time::timeout_at(until, slots.clone().acquire_owned()).await {
            Ok(Ok(p)) => permits.push(p),
            _ => return permits,
        }
    }
}

/// Claims up to one delivery per permit and starts their attempts; returns how many.
async fn claim_and_attempt(
    ctx: &Ctx,
    permits: Vec<OwnedSemaphorePermit>,
    in_flight: &InFlight,
) -> anyhow::Result<usize> {
    // The attempt's own lease (a job's `take` gives the same): its request's timeout and a
    // margin; the reconciler re-pushes a delivery whose lease has passed.
    let lease = ctx.config.webhook_timeout + Duration::from_secs(5);
    let claimed = delivery::claim_due(&ctx.db, permits.len(), lease).await?;
    let n = claimed.len();
    for ((work, trace), permit) in claimed.into_iter().zip(permits) {
        in_flight.0.spawn(attempt(ctx.clone(), work, trace, permit));
    }
    Ok(n)
}

/// One claimed delivery's attempt, run as its job would be (span, metrics).
async fn attempt(ctx: Ctx, work: Work, trace: Option<String>, _permit: OwnedSemaphorePermit) {
    let id = work.id;
    let span = job_span(DeliverJob::QUEUE);
    span.record("delivery.id", tracing::field::display(id));
    let run = deliver::attempt_held(&ctx, work);
    // `as_job` logs a failure; the delivery's lease then passes and the reconciler re-pushes it.
    if as_job(
        &ctx,
        (DeliverJob::QUEUE, span),
        trace.as_deref(),
        Duration::ZERO,
        run,
    )
    .await
    .is_err()
    {
        tracing::debug!(delivery.id = %id, "claimed delivery left to the reconciler");
    }
}
