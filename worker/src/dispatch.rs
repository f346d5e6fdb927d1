//! The delivery dispatcher of a worker process: woken by `LISTEN amp_deliveries` (the
//! trigger that writes deliveries with their event notifies it), it claims the fresh
//! deliveries due now (`FOR UPDATE SKIP LOCKED`, so among many workers one pushes each)
//! and pushes their `webhook.deliver` jobs. A lost notification or push costs latency,
//! not a delivery: the scheduler's reconciler re-enqueues overdue deliveries.

use crate::ctx::Ctx;
use common::jobs::DeliverJob;
use common::webhook::delivery;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Deliveries one claim takes.
const CLAIM: u64 = 1_000;

/// Runs until `stop` is cancelled.
pub async fn run(ctx: Ctx, stop: CancellationToken) {
    let wake = Arc::new(Notify::new());
    let listener = tokio::spawn(common::db::listen::wake_on_notify(
        ctx.config.database_url.clone(),
        delivery::CHANNEL,
        "webhook deliveries",
        wake.clone(),
    ));
    // What was due before this process listened is claimed at once.
    wake.notify_one();
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = wake.notified() => {}
        }
        loop {
            match claim_and_push(&ctx).await {
                Ok(n) if n as u64 == CLAIM => continue,
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

async fn claim_and_push(ctx: &Ctx) -> anyhow::Result<usize> {
    // Long enough for the job to be picked up; a job lost on the way is re-pushed by the
    // reconciler once this lease is overdue.
    let lease = Duration::from_secs(5);
    let claimed = delivery::claim_due(&ctx.db, CLAIM, lease).await?;
    let jobs: Vec<(DeliverJob, Option<String>)> = claimed
        .into_iter()
        .map(|(id, due, trace)| {
            let job = DeliverJob {
                delivery_id: id,
                due,
            };
            (job, trace)
        })
        .collect();
    if !jobs.is_empty() {
        ctx.producer.enqueue_batch_traced(&jobs).await?;
    }
    Ok(jobs.len())
}
