//! `execution.submit`: admit a queued run, or create an admitted run at AMC exactly once.
//!
//! Before the AMC call the row records `submit_started_at`. A step that finds it set
//! without an AMC id (a crash, a lost or held answer) is *in doubt*: it lists the
//! instance's executions since then and adopts the one with the same SQL and window;
//! only if none exists does it create again.

use super::{CallError, JobResult, call_amc, free_slot, lease, load, on_call_error, schedule};
use crate::ctx::Ctx;
use crate::target::Target;
use crate::token::TokenError;
use chrono::{Duration as ChronoDuration, Utc};
use common::amc::{CreateExecution, WorkflowExecution};
use common::execution::{self, Change, ExecutionRow, Status, now_micros};
use common::ids::AmcExecutionId;
use common::jobs::{EXECUTION_POLL, EXECUTION_SUBMIT, StepJobV1};
use std::time::Duration;

pub async fn handle(ctx: &Ctx, job: StepJobV1) -> JobResult {
    let Some(row) = load(ctx, job.execution_id).await? else {
        return Ok(());
    };
    match row.status() {
        Status::Queued => super::admit::admit_instance(ctx, row.instance()).await,
        Status::Submitting => submit(ctx, &job).await,
        _ => Ok(()),
    }
}

async fn submit(ctx: &Ctx, job: &StepJobV1) -> JobResult {
    let Some((row, held)) = lease(ctx, job, Status::Submitting, ctx.step_lease()).await? else {
        return Ok(());
    };
    if row.cancel_requested_at.is_some() && row.submit_started_at.is_none() {
        let change = Change::from(&[Status::Submitting])
            .due(Some(held))
            .guard("submit_started_at IS NULL")
            .reason("cancelled before submission");
        if execution::transition(&ctx.db, row.execution_id(), Status::Cancelled, &change)
            .await?
            .is_some()
        {
            free_slot(ctx, row.instance()).await?;
        }
        return Ok(());
    }
    let Some(target) = Target::load(&ctx.db, row.instance()).await? else {
        return Ok(());
    };
    if row.submit_started_at.is_some() {
        match find_existing(ctx, &target, &row).await {
            Ok(Some(found)) => {
                tracing::info!(execution.id = %row.id, amc.execution_id = %found, "adopted the run AMC already had for a submission in doubt");
                return running(ctx, &row, held, found).await;
            }
            Ok(None) if row.cancel_requested_at.is_some() => {
                // AMC never got it and the user wants it stopped: nothing to cancel there.
                let change = Change::from(&[Status::Submitting])
                    .due(Some(held))
                    .set("next_check_at", Option::<chrono::DateTime<Utc>>::None)
                    .reason("cancelled: the submission in doubt never reached AMC");
                if execution::transition(&ctx.db, row.execution_id(), Status::Cancelled, &change)
                    .await?
                    .is_some()
                {
                    free_slot(ctx, row.instance()).await?;
                }
                return Ok(());
            }
            Ok(None) => {
                tracing::info!(execution.id = %row.id, "submission in doubt: AMC has no such run; submitting again")
            }
            Err(CallError::Token(TokenError::ReauthRequired(reason))) => {
                // The run may exist at AMC: failing it could orphan it there. Wait (like a
                // run at AMC) until the connection is authorised again, then adopt it.
                tracing::warn!(execution.id = %row.id, reason, "submission in doubt while the connection needs re-authorising; waiting");
                return schedule(
                    ctx,
                    &row,
                    Status::Submitting,
                    held,
                    EXECUTION_SUBMIT,
                    ctx.config.poll_max,
                    None,
                )
                .await;
            }
            Err(e) => {
                return on_call_error(ctx, &row, Status::Submitting, held, EXECUTION_SUBMIT, e)
                    .await;
            }
        }
    }
    // Record that a submission is about to happen; a cancel that got in first wins.
    let started = Change::from(&[Status::Submitting])
        .due(Some(held))
        .guard("cancel_requested_at IS NULL")
        .set("submit_started_at", now_micros());
    let Some(row) = execution::touch(&ctx.db, row.execution_id(), &started).await? else {
        // Cancelled meanwhile: the cancel job (or the next reconcile) ends it.
        return Ok(());
    };
    let request = CreateExecution {
        sql_query: row.sql_query.clone(),
        time_window_start: row.time_window_start,
        time_window_end: row.time_window_end,
        time_zone: row.time_zone.clone(),
    };
    let created = call_amc(ctx, &target, |token| {
        let (amc, t, req) = (ctx.amc.clone(), target.clone(), request.clone());
        async move { amc.create_execution(&t.amc(&token), &req).await }
    })
    .await;
    match created {
        Ok(exec) => running(ctx, &row, held, exec.workflow_execution_id).await,
        Err(e) => on_call_error(ctx, &row, Status::Submitting, held, EXECUTION_SUBMIT, e).await,
    }
}

/// Lists AMC's executions created since the submission began and finds ours.
async fn find_existing(
    ctx: &Ctx,
    target: &Target,
    row: &ExecutionRow,
) -> Result<Option<AmcExecutionId>, CallError> {
    let since = row.submit_started_at.unwrap_or_else(Utc::now) - ChronoDuration::minutes(5);
    let list: Vec<WorkflowExecution> = call_amc(ctx, target, |token| {
        let (amc, t) = (ctx.amc.clone(), target.clone());
        async move {
            amc.list_executions(&t.amc(&token), since.naive_utc(), true)
                .await
        }
    })
    .await?;
    let start = row
        .time_window_start
        .format(common::time_window::AMC_FORMAT)
        .to_string();
    let end = row
        .time_window_end
        .format(common::time_window::AMC_FORMAT)
        .to_string();
    Ok(list
        .into_iter()
        .find(|e| {
            e.sql_query.as_deref() == Some(row.sql_query.as_str())
                && e.time_window_start_original.as_deref() == Some(start.as_str())
                && e.time_window_end_original.as_deref() == Some(end.as_str())
                && e.time_window_time_zone_original.as_deref().unwrap_or("UTC") == row.time_zone
        })
        .map(|e| e.workflow_execution_id))
}

/// Stores AMC's id, moves the run to `running` and schedules its first status check.
async fn running(
    ctx: &Ctx,
    row: &ExecutionRow,
    held: chrono::DateTime<Utc>,
    amc_id: AmcExecutionId,
) -> JobResult {
    let first_check = ctx.config.poll_min;
    let at = now_micros() + ChronoDuration::from_std(first_check).unwrap_or_default();
    let change = Change::from(&[Status::Submitting])
        .due(Some(held))
        .set("amc_execution_id", amc_id.0.clone())
        .set("next_check_at", at)
        .set("attempt", 0)
        .reason(format!("submitted to AMC as {amc_id}"));
    match execution::transition(&ctx.db, row.execution_id(), Status::Running, &change).await {
        Ok(Some(_)) => {
            let job = StepJobV1 {
                execution_id: row.execution_id(),
                due: Some(at),
            };
            ctx.producer
                .push_after(EXECUTION_POLL, &job, first_check)
                .await?;
            Ok(())
        }
        Ok(None) => Ok(()),
        Err(e) => {
            // The run exists at AMC but we could not record it: the row stays in doubt
            // (submit_started_at set), so the next attempt adopts it instead of resubmitting.
            tracing::error!(execution.id = %row.id, amc.execution_id = %amc_id, error = %e, "could not record the AMC id");
            schedule(
                ctx,
                row,
                Status::Submitting,
                held,
                EXECUTION_SUBMIT,
                Duration::from_secs(1),
                None,
            )
            .await?;
            Err(e.into())
        }
    }
}
