//! `execution.poll`: one AMC status check of a running run, then the next one as a
//! delayed job (never a sleep), backing off from `AMP_POLL_MIN` to `AMP_POLL_MAX`.
//!
//! A check does not lease its row: asking AMC for a status changes nothing there, so a
//! twin that asks too is harmless, and every write below is a compare-and-set on the
//! job's `due`, which only one of them wins. The row, where it runs and the owner's token
//! are read with the other checks due at the same moment, and an unchanged status moves
//! `next_check_at` with them too (`crate::steps`). A worker killed mid-check leaves the row
//! due, so the reconciler re-pushes it after its grace rather than after a lease.

use super::{
    CallError, Handle, JobError, JobResult, call_amc, end, free_slot, on_call_error, schedule,
};
use crate::ctx::Ctx;
use chrono::Utc;
use common::amc::{AmcError, AmcStatus, ErrorClass};
use common::connection::TokenState;
use common::execution::{
    self, Ending, ErrorCode, ExecutionRow, Held, Status, Target, now_micros, poll_interval,
};
use common::ids::AmcExecutionId;
use common::jobs::{FetchJob, PollJob};

impl Handle for PollJob {
    fn describe(&self, span: &tracing::Span) {
        span.record("execution.id", tracing::field::display(self.execution_id));
    }

    async fn handle(self, ctx: &Ctx) -> JobResult {
        let Some(Taken {
            row,
            target,
            token,
            held,
        }) = take(ctx, &self).await?
        else {
            return Ok(());
        };
        check(ctx, &row, &target, token, &held).await
    }

    async fn handed_back(self, ctx: &Ctx) -> Self {
        super::step_handed_back(self, ctx).await
    }
}

async fn check(
    ctx: &Ctx,
    row: &ExecutionRow,
    target: &Target,
    token: Option<TokenState>,
    held: &Held,
) -> JobResult {
    let Some(amc_id) = row.amc_execution_id.clone() else {
        let ending = Ending::failed(ErrorCode::Internal, "running without an AMC execution id");
        return end(ctx, row, held, ending).await;
    };
    if row.cancel_requested_at.is_some() {
        let cancelled = call_amc(ctx, target, None, |token| {
            let (amc, t, id) = (ctx.amc.clone(), target.clone(), amc_id.clone());
            async move { amc.cancel_execution(&t.amc(&token), &id).await }
        })
        .await;
        match cancelled {
            // A terminal run cannot be cancelled (400); the status below tells what it became.
            Ok(())
            | Err(CallError::Amc(AmcError {
                class: ErrorClass::Permanent | ErrorClass::NotFound,
                ..
            })) => {}
            Err(e) => return on_call_error(ctx, row, held, e).await,
        }
    }
    let status = call_amc(ctx, target, token, |token| {
        let (amc, t, id) = (ctx.amc.clone(), target.clone(), amc_id.clone());
        async move { amc.get_execution(&t.amc(&token), &id).await }
    })
    .await;
    let exec = match status {
        Ok(e) => e,
        Err(e) => return on_call_error(ctx, row, held, e).await,
    };
    match &exec.status {
        AmcStatus::Succeeded if row.cancel_requested_at.is_some() => {
            end(ctx, row, held, Ending::Cancelled).await
        }
        AmcStatus::Succeeded => fetching(ctx, row, held, &amc_id).await,
        AmcStatus::Cancelled => end(ctx, row, held, Ending::Cancelled).await,
        s if s.is_failed() => {
            let reason = exec
                .failure_reason()
                .unwrap_or("AMC reported the run as failed without a reason");
            end(ctx, row, held, Ending::failed(ErrorCode::AmcFailed, reason)).await
        }
        other => {
            if let AmcStatus::Unknown(s) = other {
                tracing::warn!(amc.status = %s, "unknown AMC status; treating it as running");
            }
            let running_for = row
                .running_at
                .map(|t| (Utc::now() - t).to_std().unwrap_or_default())
                .unwrap_or_default();
            let next = poll_interval(running_for, ctx.config.poll_min, ctx.config.poll_max);
            schedule(ctx, held, next, Some(0)).await
        }
    }
}

/// AMC is done: the run moves to `fetching`, its fetch goes out now, its slot is free.
async fn fetching(
    ctx: &Ctx,
    row: &ExecutionRow,
    held: &Held,
    amc_id: &AmcExecutionId,
) -> JobResult {
    let at = now_micros();
    if execution::mark_fetching(&ctx.db, held, at).await?.is_some() {
        tracing::debug!(amc.execution_id = %amc_id, "AMC reports SUCCEEDED; fetching");
        ctx.producer
            .enqueue(&FetchJob::new(row.id, Some(at)))
            .await?;
        free_slot(ctx, row.instance_id).await?;
    }
    Ok(())
}

struct Taken {
    row: ExecutionRow,
    target: Target,
    token: Option<TokenState>,
    held: Held,
}

/// The run this check is about, if the check is still due.
async fn take(ctx: &Ctx, job: &PollJob) -> Result<Option<Taken>, JobError> {
    match job.due {
        Some(due) => {
            let Some(step) = ctx
                .steps
                .read(Status::Running, job.execution_id, due)
                .await?
            else {
                return Ok(None);
            };
            let held = Held {
                id: job.execution_id,
                status: Status::Running,
                at: due,
            };
            Ok(Some(Taken {
                row: step.row,
                target: step.target,
                token: step.token,
                held,
            }))
        }
        // Not pushed by this code, which always names the due check; take the row as the
        // other steps do.
        None => {
            let taken = execution::lease(
                &ctx.db,
                job.execution_id,
                Status::Running,
                None,
                ctx.step_lease(),
            )
            .await?;
            let Some((row, held)) = taken else {
                return Ok(None);
            };
            let Some(target) = Target::load(&ctx.db, row.instance_id).await? else {
                return Ok(None);
            };
            Ok(Some(Taken {
                row,
                target,
                token: None,
                held,
            }))
        }
    }
}
