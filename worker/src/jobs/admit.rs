//! `instance.admit`: start the oldest queued runs of an instance's account as slots free up.

use super::{Handle, JobResult};
use crate::ctx::Ctx;
use common::execution::{account_of_instance, admit_account};
use common::ids::{AccountId, InstanceId};
use common::jobs::{AdmitJob, SubmitJob};

impl Handle for AdmitJob {
    fn describe(&self, span: &tracing::Span) {
        span.record("instance.id", tracing::field::display(self.instance_id));
    }

    async fn handle(self, ctx: &Ctx) -> JobResult {
        admit_instance(ctx, self.instance_id).await
    }
}

/// Admits what the caps allow and pushes a submit job for each admitted run. While this
/// process already runs a pass for the account, it only asks that pass to go round again.
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
    loop {
        admit_pass(ctx, instance, account).await?;
        if !turn.again() {
            return Ok(());
        }
    }
}

async fn admit_pass(ctx: &Ctx, instance: InstanceId, account: AccountId) -> JobResult {
    let admitted = admit_account(&ctx.db, account).await?;
    if admitted.is_empty() {
        return Ok(());
    }
    let jobs: Vec<SubmitJob> = admitted
        .into_iter()
        .map(|(id, due)| SubmitJob::new(id, Some(due)))
        .collect();
    tracing::debug!(instance.id = %instance, admitted = jobs.len(), "admitted queued runs");
    ctx.producer.enqueue_batch(&jobs).await?;
    Ok(())
}
