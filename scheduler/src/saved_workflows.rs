//! Deleting saved workflows no run needs any more, every `AMP_PRUNE_INTERVAL`: those unused
//! for `AMP_AMC_SAVED_WORKFLOW_GRACE` that no unfinished run records are deleted at AMC
//! (`common::saved_workflow::cleanup`, safe with several replicas). Each deletion counts in
//! `pruned_total{kind="saved_workflows"}`.

use crate::Scheduler;
use common::connection::Tokens;
use common::saved_workflow::cleanup::{Cleanup, remove_unused};
use common::telemetry::metrics::ReconcileLabels;

/// One pass of the duty; a failure is logged and the next pass tries again.
pub async fn pass(s: &Scheduler) {
    let cleanup = Cleanup {
        tokens: Tokens {
            db: &s.db,
            cipher: &s.cipher,
            lwa: &s.lwa,
        },
        amc: &s.amc,
        grace: s.config.saved_workflow_grace,
    };
    match remove_unused(&cleanup).await {
        Ok(c) => {
            if c.deleted > 0 {
                s.metrics
                    .pruned
                    .get_or_create(&ReconcileLabels {
                        kind: "saved_workflows",
                    })
                    .inc_by(c.deleted);
                tracing::info!(
                    deleted = c.deleted,
                    failed = c.failed,
                    "deleted unused saved workflows at AMC"
                );
            }
        }
        Err(e) => tracing::warn!(
            error = %e,
            "deleting unused saved workflows failed; trying again next interval"
        ),
    }
}
