//! `execution.cancel`: carry a user's cancellation to where the run is. A run not yet at
//! AMC ends `cancelled` at once; a run at AMC is cancelled there by its next status check,
//! which is brought forward to now.

use super::{Handle, JobResult, free_slot};
use crate::ctx::Ctx;
use common::execution::{self, Status, Unsubmitted};
use common::jobs::{CancelJob, FetchJob, PollJob};

impl Handle for CancelJob {
    fn describe(&self, span: &tracing::Span) {
        span.record("execution.id", tracing::field::display(self.execution_id));
    }

    async fn handle(self, ctx: &Ctx) -> JobResult {
        let Some(row) = execution::find(&ctx.db, self.execution_id).await? else {
            return Ok(());
        };
        if row.cancel_requested_at.is_none() {
            return Ok(());
        }
        match row.status {
            Status::Submitting => {
                // Not yet sent to AMC: nothing to cancel there. Otherwise a submission is
                // under way: its step sees the request and the poll that follows cancels.
                let cancelled = execution::cancel_unsubmitted(
                    &ctx.db,
                    row.id,
                    None,
                    Unsubmitted::BeforeSubmission,
                )
                .await?;
                if cancelled.is_some() {
                    free_slot(ctx, row.instance_id).await?;
                }
                Ok(())
            }
            status @ (Status::Running | Status::Fetching) => {
                // Bring the next step forward, unless one is holding the row right now.
                let Some((row, at)) = execution::bring_forward(&ctx.db, row.id, status).await?
                else {
                    return Ok(());
                };
                if status == Status::Running {
                    ctx.producer
                        .enqueue(&PollJob::new(row.id, Some(at)))
                        .await?;
                } else {
                    ctx.producer
                        .enqueue(&FetchJob::new(row.id, Some(at)))
                        .await?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}
