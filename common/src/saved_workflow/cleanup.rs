//! Deleting unused saved workflows, a scheduler duty: a saved workflow whose last use is
//! older than the grace (`AMP_AMC_SAVED_WORKFLOW_GRACE`) and that no unfinished run
//! records is deleted at AMC, then its row. Each is taken in a transaction of its own that
//! locks its row (`FOR UPDATE SKIP LOCKED`, re-checking both conditions) while AMC is
//! asked, so several scheduler replicas share the work, and a run recording a use
//! meanwhile ([`super::record_use`]) waits and then saves the workflow anew. AMC answering
//! that the workflow does not exist counts as deleted, so a pass that crashed after the
//! AMC call only deletes (nothing) again; any other failure leaves the row for the next
//! pass.

use crate::amc::AmcClient;
use crate::connection::{CallError, TokenError, Tokens, call_amc};
use crate::execution::{Status, Target};
use crate::ids::{AmcWorkflowId, InstanceId};
use crate::repo::stmt;
use sea_orm::{ConnectionTrait, DbErr, TransactionTrait};
use std::time::Duration;

/// Saved workflows looked at per pass (the rest waits for the next pass).
const BATCH: i64 = 200;

/// What a pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Cleaned {
    /// Deleted at AMC (or already gone there), and forgotten.
    pub deleted: u64,
    /// Left for the next pass: AMC or LWA failed, or the owner's connection needs
    /// authorising again.
    pub failed: u64,
}

/// What a pass needs: tokens, the AMC client, and the grace.
pub struct Cleanup<'a> {
    pub tokens: Tokens<'a>,
    pub amc: &'a AmcClient,
    /// How long a saved workflow stays after its last use.
    pub grace: Duration,
}

/// The condition on `amc_saved_workflows s` (`$1`: the grace in seconds): unused for the
/// grace, and recorded by no run that has not ended.
fn unused() -> String {
    format!(
        "s.last_used_at < now() - make_interval(secs => $1) AND NOT EXISTS (SELECT 1 \
           FROM executions e WHERE e.instance_id = s.instance_id \
           AND e.amc_workflow_id = s.workflow_id AND e.status NOT IN {})",
        Status::ENDED_SQL
    )
}

/// One pass: deletes the saved workflows no run needs any more.
pub async fn remove_unused(c: &Cleanup<'_>) -> Result<Cleaned, DbErr> {
    let grace = c.grace.as_secs_f64();
    let candidates = c
        .tokens
        .db
        .query_all_raw(stmt(
            &format!(
                "SELECT s.instance_id, s.workflow_id FROM amc_saved_workflows s WHERE {} \
                 ORDER BY s.last_used_at LIMIT $2",
                unused()
            ),
            [grace.into(), BATCH.into()],
        ))
        .await?;
    let mut pass = Cleaned::default();
    for row in &candidates {
        let instance: InstanceId = row.try_get("", "instance_id")?;
        let id: AmcWorkflowId = row.try_get("", "workflow_id")?;
        match remove_one(c, instance, &id).await? {
            Some(true) => pass.deleted += 1,
            Some(false) => pass.failed += 1,
            None => {}
        }
    }
    Ok(pass)
}

/// Deletes one saved workflow if it is still unused and no other pass holds it: `true`
/// once deleted, `false` if AMC (or LWA) failed, `None` if it was left alone.
async fn remove_one(
    c: &Cleanup<'_>,
    instance: InstanceId,
    id: &AmcWorkflowId,
) -> Result<Option<bool>, DbErr> {
    let txn = c.tokens.db.begin().await?;
    let held = txn
        .query_one_raw(stmt(
            &format!(
                "SELECT s.workflow_id FROM amc_saved_workflows s \
                 WHERE s.instance_id = $2 AND s.workflow_id = $3 AND {} \
                 FOR UPDATE OF s SKIP LOCKED",
                unused()
            ),
            [
                c.grace.as_secs_f64().into(),
                instance.into(),
                id.clone().into(),
            ],
        ))
        .await?;
    if held.is_none() {
        return Ok(None);
    }
    // The instance is there (its rows go with it), so it has a target.
    let Some(target) = Target::load(&txn, instance).await? else {
        return Ok(None);
    };
    let deleted = call_amc(&c.tokens, target.connection_id, None, |token| {
        let (amc, t, id) = (c.amc.clone(), target.clone(), id.clone());
        async move { amc.delete_workflow(&t.amc(&token), &id).await }
    })
    .await;
    match deleted {
        Ok(()) => {
            txn.execute_raw(stmt(
                "DELETE FROM amc_saved_workflows WHERE instance_id = $1 AND workflow_id = $2",
                [instance.into(), id.clone().into()],
            ))
            .await?;
            txn.commit().await?;
            tracing::info!(instance.id = %instance, amc.workflow_id = %id, "deleted an unused saved workflow at AMC");
            Ok(Some(true))
        }
        Err(CallError::Token(TokenError::Db(e))) => Err(e),
        Err(e) => {
            tracing::warn!(instance.id = %instance, amc.workflow_id = %id, error = %e, "could not delete an unused saved workflow at AMC; trying again next pass");
            Ok(Some(false))
        }
    }
}
