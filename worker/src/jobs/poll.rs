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
    JobError, JobResult, call_amc, call_amc_with, end, free_slot, lease, on_call_error, schedule,
};
use crate::ctx::Ctx;
use crate::target::Target;
use chrono::DateTime;
use chrono::Utc;
use common::amc::{AmcStatus, ErrorClass};
use common::execution::{
    self, Change, ExecutionRow, Status, TokenState, now_micros, poll_interval,
};
use common::ids::AmcExecutionId;
use common::jobs::{EXECUTION_FETCH, EXECUTION_POLL, StepJobV1};

pub async fn handle(ctx: &Ctx, job: StepJobV1) -> JobResult {
    let Some((row, target, token, held)) = take(ctx, &job).await? else {
        return Ok(());
    };
    let Some(amc_id) = row.amc_execution_id.clone().map(AmcExecutionId) else {
        return end(
            ctx,
            &row,
            Status::Running,
            held,
            Status::Failed,
            Some(("internal", "running without an AMC execution id")),
        )
        .await;
    };
    if row.cancel_requested_at.is_some() {
        let cancelled = call_amc(ctx, &target, |token| {
            let (amc, t, id) = (ctx.amc.clone(), target.clone(), amc_id.clone());
            async move { amc.cancel_execution(&t.amc(&token), &id).await }
        })
        .await;
        match cancelled {
            // A terminal run cannot be cancelled (400); the status below tells what it became.
            Ok(())
            | Err(super::CallError::Amc(common::amc::AmcError {
                class: ErrorClass::Permanent | ErrorClass::NotFound,
                ..
            })) => {}
            Err(e) => {
                return on_call_error(ctx, &row, Status::Running, held, EXECUTION_POLL, e).await;
            }
        }
    }
    let status = call_amc_with(ctx, &target, token, |token| {
        let (amc, t, id) = (ctx.amc.clone(), target.clone(), amc_id.clone());
        async move { amc.get_execution(&t.amc(&token), &id).await }
    })
    .await;
    let exec = match status {
        Ok(e) => e,
        Err(e) => return on_call_error(ctx, &row, Status::Running, held, EXECUTION_POLL, e).await,
    };
    match &exec.status {
        AmcStatus::Succeeded if row.cancel_requested_at.is_some() => {
            end(ctx, &row, Status::Running, held, Status::Cancelled, None).await
        }
        AmcStatus::Succeeded => {
            let at = now_micros();
            let change = Change::from(&[Status::Running])
                .due(Some(held))
                .set("next_check_at", at)
                .set("attempt", 0)
                .reason("AMC reports SUCCEEDED");
            if execution::transition(&ctx.db, row.execution_id(), Status::Fetching, &change)
                .await?
                .is_some()
            {
                ctx.producer
                    .push(
                        EXECUTION_FETCH,
                        &StepJobV1 {
                            execution_id: row.execution_id(),
                            due: Some(at),
                        },
                    )
                    .await?;
                free_slot(ctx, row.instance()).await?;
            }
            Ok(())
        }
        AmcStatus::Cancelled => {
            end(ctx, &row, Status::Running, held, Status::Cancelled, None).await
        }
        s if s.is_failed() => {
            let reason = exec
                .failure_reason()
                .unwrap_or("AMC reported the run as failed without a reason")
                .to_string();
            end(
                ctx,
                &row,
                Status::Running,
                held,
                Status::Failed,
                Some(("amc_failed", &reason)),
            )
            .await
        }
        other => {
            if let AmcStatus::Unknown(s) = other {
                tracing::warn!(execution.id = %row.id, amc.status = %s, "unknown AMC status; treating it as running");
            }
            let running_for = row
                .running_at
                .map(|t| (Utc::now() - t).to_std().unwrap_or_default())
                .unwrap_or_default();
            let next = poll_interval(running_for, ctx.config.poll_min, ctx.config.poll_max);
            schedule(
                ctx,
                &row,
                Status::Running,
                held,
                EXECUTION_POLL,
                next,
                Some(0),
            )
            .await
        }
    }
}

type Taken = (ExecutionRow, Target, Option<TokenState>, DateTime<Utc>);

/// The run this check is about, if the check is still due.
async fn take(ctx: &Ctx, job: &StepJobV1) -> Result<Option<Taken>, JobError> {
    match job.due {
        Some(due) => {
            let Some(step) = ctx
                .steps
                .read(Status::Running, job.execution_id, due)
                .await
                .map_err(sea_orm::DbErr::from)?
            else {
                return Ok(None);
            };
            let target = Target::of_step(&step)?;
            Ok(Some((step.row, target, step.token, due)))
        }
        // Not pushed by this code, which always names the due check; take the row as the
        // other steps do.
        None => {
            let Some((row, held)) = lease(ctx, job, Status::Running, ctx.step_lease()).await?
            else {
                return Ok(None);
            };
            let Some(target) = Target::load(&ctx.db, row.instance()).await? else {
                return Ok(None);
            };
            Ok(Some((row, target, None, held)))
        }
    }
}
