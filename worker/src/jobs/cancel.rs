//! `execution.cancel`: carry a user's cancellation to where the run is. A run not yet at
//! AMC ends `cancelled` at once; a run at AMC is cancelled there by its next status check,
//! which is brought forward to now.

use super::{JobResult, free_slot};
use crate::ctx::Ctx;
use common::execution::{self, Change, Status, now_micros};
use common::jobs::{EXECUTION_FETCH, EXECUTION_POLL, StepJobV1};

pub async fn handle(ctx: &Ctx, job: StepJobV1) -> JobResult {
    let Some(row) = execution::find(&ctx.db, job.execution_id).await? else {
        return Ok(());
    };
    if row.cancel_requested_at.is_none() {
        return Ok(());
    }
    match row.status() {
        Status::Submitting => {
            // Not yet sent to AMC: nothing to cancel there.
            let change = Change::from(&[Status::Submitting])
                .guard("submit_started_at IS NULL")
                .reason("cancelled before submission");
            if execution::transition(&ctx.db, row.execution_id(), Status::Cancelled, &change)
                .await?
                .is_some()
            {
                free_slot(ctx, row.instance()).await?;
            }
            // Otherwise a submission is under way: its step sees the request and the
            // poll that follows cancels at AMC.
            Ok(())
        }
        status @ (Status::Running | Status::Fetching) => {
            // Bring the next step forward, unless one is holding the row right now.
            let at = now_micros();
            let change = Change::from(&[status])
                .guard("next_check_at IS NULL OR next_check_at > now()")
                .set("next_check_at", at);
            let Some(row) = execution::touch(&ctx.db, row.execution_id(), &change).await? else {
                return Ok(());
            };
            let queue_name = if status == Status::Running {
                EXECUTION_POLL
            } else {
                EXECUTION_FETCH
            };
            ctx.producer
                .push(
                    queue_name,
                    &StepJobV1 {
                        execution_id: row.execution_id(),
                        due: Some(at),
                    },
                )
                .await?;
            Ok(())
        }
        _ => Ok(()),
    }
}
