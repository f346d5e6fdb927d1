//! `instance.admit`: start the oldest queued runs of an instance's account as slots free up.

use super::JobResult;
use crate::ctx::Ctx;
use common::execution::{account_of_instance, admit_account};
use common::ids::InstanceId;
use common::jobs::{AdmitJobV1, EXECUTION_SUBMIT, StepJobV1};

pub async fn handle(ctx: &Ctx, job: AdmitJobV1) -> JobResult {
    admit_instance(ctx, job.instance_id).await
}

/// Admits what the caps allow and pushes a submit job for each admitted run.
pub async fn admit_instance(ctx: &Ctx, instance: InstanceId) -> JobResult {
    let Some(account) = account_of_instance(&ctx.db, instance).await? else {
        return Ok(());
    };
    let admitted = admit_account(&ctx.db, account).await?;
    if admitted.is_empty() {
        return Ok(());
    }
    let jobs: Vec<StepJobV1> = admitted
        .into_iter()
        .map(|(id, due)| StepJobV1 {
            execution_id: id,
            due: Some(due),
        })
        .collect();
    tracing::debug!(instance.id = %instance, admitted = jobs.len(), "admitted queued runs");
    ctx.producer.push_batch(EXECUTION_SUBMIT, &jobs).await?;
    Ok(())
}
