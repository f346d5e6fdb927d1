//! `instance.admit`: start the oldest queued runs of an instance's account as slots free up.
//!
//! An admitted run goes straight to AMC from the worker that admitted it: admission
//! leases it to this worker and records its submission as begun in the same move, and
//! the admission job sends it before it ends (no submit job, no second move of its row).
//! A worker that dies first leaves the lease to run out; the reconciler then hands the
//! run to a submit step, which finds the submission in doubt and asks AMC before creating.

use super::{Handle, JobResult, submit};
use crate::ctx::Ctx;
use common::coalesce::Turn;
use common::execution::{Admit, account_of_instance, admit_account};
use common::ids::{AccountId, InstanceId};
use common::jobs::AdmitJob;
use common::telemetry::trace;
use tokio::task::JoinSet;
use tracing::Instrument;

/// Most admitted runs one admission has on their way to AMC at once. A pass admits no
/// more than the room left, so every run it leases starts its AMC call at once, well
/// within its lease.
const IN_FLIGHT: usize = 512;

impl Handle for AdmitJob {
    fn describe(&self, span: &tracing::Span) {
        span.record("instance.id", tracing::field::display(self.instance_id));
    }

    async fn handle(self, ctx: &Ctx) -> JobResult {
        admit_instance(ctx, self.instance_id).await
    }
}

/// Admits what the caps allow and sends each admitted run to AMC. While this process
/// already runs a pass for the account, it only asks that pass to go round again.
pub async fn admit_instance(ctx: &Ctx, instance: InstanceId) -> JobResult {
    let Some(account) = account_of_instance(&ctx.db, instance).await? else {
        return Ok(());
    };
    admit(ctx, instance, account).await
}

/// [`admit_instance`] when the instance's account is known.
pub async fn admit(ctx: &Ctx, instance: InstanceId, account: AccountId) -> JobResult {
    let Some(mut turn) = ctx.admissions.enter(account) else {
        return Ok(());
    };
    let mut sending = JoinSet::new();
    let passes = admit_passes(ctx, (instance, account), &mut turn, &mut sending).await;
    // Another pass may start meanwhile: the account row's lock orders the two.
    drop(turn);
    // The runs admitted are leased to this worker: they reach AMC before the job ends.
    while let Some(done) = sending.join_next().await {
        sent(done);
    }
    passes
}

/// Admission passes until one finds nothing more to admit and no request came in
/// meanwhile; the runs admitted go to AMC on `sending`.
async fn admit_passes(
    ctx: &Ctx,
    (instance, account): (InstanceId, AccountId),
    turn: &mut Turn<'_, AccountId>,
    sending: &mut JoinSet<JobResult>,
) -> JobResult {
    loop {
        while let Some(done) = sending.try_join_next() {
            sent(done);
        }
        let room = IN_FLIGHT - sending.len();
        let admit = Admit {
            limit: room,
            lease: ctx.step_lease(),
        };
        let admitted = admit_account(&ctx.db, account, admit).await?;
        let full = admitted.len() == room;
        if !admitted.is_empty() {
            tracing::debug!(instance.id = %instance, admitted = admitted.len(), "admitted queued runs");
        }
        for step in admitted {
            let Some(lease) = step.row.next_check_at else {
                continue;
            };
            let (ctx, way) = (ctx.clone(), ctx.sending.hold(step.row.id, lease));
            // The run's own trace (its request's), not the admitting job's: what its
            // submission pushes (its first check) carries it on.
            let root = step
                .row
                .trace_context
                .as_deref()
                .and_then(trace::parse)
                .or_else(trace::root);
            let send = async move { submit::admitted(&ctx, step, &way).await };
            sending.spawn(trace::scope(root, send).in_current_span());
        }
        if ctx.stopping.is_cancelled() {
            // What is still queued waits for another worker's admission (or the reconciler's).
            return Ok(());
        }
        if full {
            // More may be queued: admit again once half of those on their way are at AMC.
            while sending.len() > IN_FLIGHT / 2 {
                match sending.join_next().await {
                    Some(done) => sent(done),
                    None => break,
                }
            }
            continue;
        }
        if !turn.again() {
            return Ok(());
        }
    }
}

/// Logs an admitted run's submission that failed on our side; its lease runs out and the
/// reconciler hands the run to a submit step.
fn sent(done: Result<JobResult, tokio::task::JoinError>) {
    let failure = match done {
        Ok(Ok(())) => return,
        Ok(Err(e)) => common::telemetry::chain(&e),
        Err(e) => common::telemetry::chain(&e),
    };
    tracing::warn!(error = %failure, "an admitted run could not be sent to AMC; it is taken again once its lease runs out");
}
