//! `execution.submit`: admit a queued run, or create an admitted run at AMC exactly once.
//!
//! An admitted run normally reaches AMC from the worker that admitted it
//! ([`admitted`], called by `admit`); a submit step with a `due` takes over a run whose
//! lease ran out (its worker died) or that is retried after a failed call.
//!
//! Before the AMC call the row records `submit_started_at`. A step that finds it set
//! without an AMC id (a crash, a lost or held answer) is *in doubt*: it lists the
//! instance's executions since then and adopts the one with the same SQL (or the same
//! saved workflow) and window; only if none exists does it create again.
//!
//! A rendered query over `AMP_AMC_ADHOC_MAX_BYTES` runs through a saved workflow
//! (`common::saved_workflow`): its use is recorded, the workflow is saved at AMC under an
//! id derived from the SQL's hash (created, or found already there), and the execution
//! names it by `workflowId`. A retry saves the same workflow again, which leaves one.

use super::{CallError, Handle, JobResult, call_amc, free_slot, on_call_error, schedule};
use crate::ctx::Ctx;
use crate::sending::OnItsWay;
use crate::token::TokenError;
use chrono::{Duration as ChronoDuration, Utc};
use common::amc::{CreateExecution, ExecutionQuery, WorkflowExecution};
use common::connection::TokenState;
use common::execution::{
    self, DueStep, ExecutionRow, Held, Status, Submitted, Target, Unsubmitted, now_micros,
};
use common::ids::AmcExecutionId;
use common::jobs::SubmitJob;
use common::saved_workflow::{self, SavedWorkflow};
use std::time::Duration;

impl Handle for SubmitJob {
    fn describe(&self, span: &tracing::Span) {
        span.record("execution.id", tracing::field::display(self.execution_id));
    }

    async fn handle(self, ctx: &Ctx) -> JobResult {
        // A submit step whose row was admitted without its submission begun (by an earlier
        // build) goes straight to AMC: it begins with the others due together.
        if let Some(due) = self.due
            && let Some(step) = ctx.steps.begin_submission(self.execution_id, due).await?
            && let Some(at) = step.row.next_check_at
        {
            let held = Held {
                id: self.execution_id,
                status: Status::Submitting,
                at,
            };
            return create(ctx, &step.row, &held, &step.target, step.token).await;
        }
        // A new run's job (no `due`): it is most likely queued, and its admission goes by
        // its account; looked up with the others that arrive together.
        let Some(run) = ctx.steps.standing(self.execution_id).await? else {
            return Ok(());
        };
        match run.status {
            Status::Queued => super::admit::admit(ctx, run.instance_id, run.account_id).await,
            Status::Submitting => submit(ctx, &self).await,
            _ => Ok(()),
        }
    }

    async fn handed_back(self, ctx: &Ctx) -> Self {
        // A new run's job holds no lease (its admission's runs, on their way to AMC, are
        // handed back by `Sending`): the run may be another worker's now, so it goes back
        // as it came.
        if self.due.is_none() {
            return self;
        }
        super::step_handed_back(self, ctx).await
    }
}

/// Sends a run this worker admitted to AMC: admission leased it to this worker and
/// recorded its submission as begun, so it goes straight to the create call.
pub async fn admitted(ctx: &Ctx, step: DueStep, way: &OnItsWay) -> JobResult {
    let Some(at) = step.row.next_check_at else {
        return Ok(());
    };
    let mut held = Held {
        id: step.row.id,
        status: Status::Submitting,
        at,
    };
    // The lease must outlast the AMC call, or the reconciler could hand the run to
    // another worker while the call is on its way: renew one that is too short.
    let call = ChronoDuration::from_std(ctx.config.amc_timeout).unwrap_or_default();
    if at - now_micros() < call + ChronoDuration::seconds(1) {
        let Some(renewed) = execution::renew_lease(&ctx.db, &held, ctx.step_lease()).await? else {
            return Ok(());
        };
        held = renewed;
        way.renewed(held.at);
    }
    create(ctx, &step.row, &held, &step.target, step.token).await
}

/// Cancels a held run AMC does not have, and frees its slot.
async fn cancel_unsubmitted(
    ctx: &Ctx,
    row: &ExecutionRow,
    held: &Held,
    why: Unsubmitted,
) -> JobResult {
    if execution::cancel_unsubmitted(&ctx.db, row.id, Some(held), why)
        .await?
        .is_some()
    {
        free_slot(ctx, row.instance_id).await?;
    }
    Ok(())
}

async fn submit(ctx: &Ctx, job: &SubmitJob) -> JobResult {
    let taken = execution::lease(
        &ctx.db,
        job.execution_id,
        Status::Submitting,
        job.due,
        ctx.step_lease(),
    )
    .await?;
    let Some((row, held)) = taken else {
        return Ok(());
    };
    if row.cancel_requested_at.is_some() && row.submit_started_at.is_none() {
        return cancel_unsubmitted(ctx, &row, &held, Unsubmitted::BeforeSubmission).await;
    }
    let Some(target) = Target::load(&ctx.db, row.instance_id).await? else {
        return Ok(());
    };
    if row.submit_started_at.is_some() {
        match find_existing(ctx, &target, &row).await {
            Ok(Some(found)) => {
                tracing::info!(amc.execution_id = %found, "adopted the run AMC already had for a submission in doubt");
                return running(ctx, &row, &held, found).await;
            }
            Ok(None) if row.cancel_requested_at.is_some() => {
                // AMC never got it and the user wants it stopped: nothing to cancel there.
                return cancel_unsubmitted(ctx, &row, &held, Unsubmitted::NeverReachedAmc).await;
            }
            Ok(None) => {
                tracing::info!("submission in doubt: AMC has no such run; submitting again")
            }
            Err(CallError::Token(TokenError::ReauthRequired(reason))) => {
                // The run may exist at AMC: failing it could orphan it there. Wait (like a
                // run at AMC) until the connection is authorised again, then adopt it.
                tracing::warn!(
                    reason,
                    "submission in doubt while the connection needs re-authorising; waiting"
                );
                return schedule(ctx, &held, ctx.config.poll_max, None).await;
            }
            Err(e) => return on_call_error(ctx, &row, &held, e).await,
        }
    }
    // Record that a submission is about to happen; a cancel that got in first wins.
    let Some(row) = execution::begin_submission(&ctx.db, &held).await? else {
        // Cancelled meanwhile: the cancel job (or the next reconcile) ends it.
        return Ok(());
    };
    create(ctx, &row, &held, &target, None).await
}

/// Creates the run at AMC (its submission recorded as begun) and records AMC's id.
async fn create(
    ctx: &Ctx,
    row: &ExecutionRow,
    held: &Held,
    target: &Target,
    token: Option<TokenState>,
) -> JobResult {
    let query = match query_of(ctx, row, target, token.clone()).await? {
        Ok(query) => query,
        Err(e) => return on_call_error(ctx, row, held, e).await,
    };
    let request = CreateExecution {
        query,
        time_window_start: row.time_window_start,
        time_window_end: row.time_window_end,
        time_zone: row.time_zone.clone(),
    };
    let created = call_amc(ctx, target, token, |token| {
        let (amc, t, req) = (ctx.amc.clone(), target.clone(), request.clone());
        async move { amc.create_execution(&t.amc(&token), &req).await }
    })
    .await;
    match created {
        Ok(exec) => running(ctx, row, held, exec.workflow_execution_id).await,
        Err(e) => on_call_error(ctx, row, held, e).await,
    }
}

/// What the run's execution runs: its SQL ad hoc, or, over the ad hoc size limit, the saved
/// workflow of that SQL (its use recorded first, then saved at AMC).
async fn query_of(
    ctx: &Ctx,
    row: &ExecutionRow,
    target: &Target,
    token: Option<TokenState>,
) -> Result<Result<ExecutionQuery, CallError>, super::JobError> {
    if !saved_workflow::needed(&row.sql_query, ctx.config.amc_adhoc_max_bytes) {
        return Ok(Ok(ExecutionQuery::AdHoc(row.sql_query.clone())));
    }
    let saved = SavedWorkflow::for_sql(&row.sql_query);
    saved_workflow::record_use(&ctx.db, row.instance_id, row.id, &saved).await?;
    tracing::info!(amc.workflow_id = %saved.id, sql_bytes = row.sql_query.len(), "the query is too big to send ad hoc; running it through a saved workflow");
    let saving = call_amc(ctx, target, token, |token| {
        let (amc, t, id, sql) = (
            ctx.amc.clone(),
            target.clone(),
            saved.id.clone(),
            row.sql_query.clone(),
        );
        async move { amc.save_workflow(&t.amc(&token), &id, &sql).await }
    })
    .await;
    Ok(saving.map(|()| ExecutionQuery::Saved(saved.id)))
}

/// Lists AMC's executions created since the submission began and finds ours.
async fn find_existing(
    ctx: &Ctx,
    target: &Target,
    row: &ExecutionRow,
) -> Result<Option<AmcExecutionId>, CallError> {
    let since = row.submit_started_at.unwrap_or_else(Utc::now) - ChronoDuration::minutes(5);
    let list: Vec<WorkflowExecution> = call_amc(ctx, target, None, |token| {
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
    // A run through a saved workflow is also known by its `workflowId` (which derives from
    // the SQL) where AMC does not show the SQL.
    let saved = row.amc_workflow_id.as_ref().map(|w| w.as_str());
    Ok(list
        .into_iter()
        .find(|e| {
            (e.sql_query.as_deref() == Some(row.sql_query.as_str())
                || saved.is_some() && e.workflow_id.as_deref() == saved)
                && e.time_window_start_original.as_deref() == Some(start.as_str())
                && e.time_window_end_original.as_deref() == Some(end.as_str())
                && e.time_window_time_zone_original.as_deref().unwrap_or("UTC") == row.time_zone
        })
        .map(|e| e.workflow_execution_id))
}

/// Stores AMC's id, moves the run to `running` and schedules its first status check (with
/// the other runs submitted at the same moment).
async fn running(ctx: &Ctx, row: &ExecutionRow, held: &Held, amc_id: AmcExecutionId) -> JobResult {
    let at = now_micros() + ChronoDuration::from_std(ctx.config.poll_min).unwrap_or_default();
    let run = Submitted {
        id: row.id,
        held_at: held.at,
        amc_execution_id: amc_id.clone(),
        first_check: at,
    };
    match ctx.steps.mark_running(run).await {
        Ok(_) => Ok(()),
        Err(e) => {
            // The run exists at AMC but we could not record it: the row stays in doubt
            // (submit_started_at set), so the next attempt adopts it instead of resubmitting.
            tracing::error!(amc.execution_id = %amc_id, error = %e, "could not record the AMC id");
            schedule(ctx, held, Duration::from_secs(1), None).await?;
            Err(e.into())
        }
    }
}
