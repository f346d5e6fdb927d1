//! Saved workflows for big queries. A rendered query over the ad hoc size limit
//! (`AMP_AMC_ADHOC_MAX_BYTES`) is not sent inline: it is saved at AMC as a workflow and
//! executed by `workflowId`. The id derives from the SQL's hash ([`SavedWorkflow::for_sql`]),
//! so a retry, a second worker or another run of the same SQL on the instance reuses one
//! workflow instead of making another. Each use is recorded before AMC is asked
//! ([`record_use`]): the instance's row in `amc_saved_workflows` and the run's
//! `amc_workflow_id`. The scheduler deletes at AMC the saved workflows no unfinished run
//! needs any more, once unused for `AMP_AMC_SAVED_WORKFLOW_GRACE` ([`cleanup`]).

pub mod cleanup;

use crate::crypto::sha256_hex;
use crate::ids::{AmcWorkflowId, ExecutionId, InstanceId};
use crate::repo::stmt;
use sea_orm::{ConnectionTrait, DbErr};

/// The prefix of the saved workflows this engine makes (the rest is 32 hex digits).
pub const ID_PREFIX: &str = "amp_";
/// Hex digits of the SQL's SHA-256 in the id: 128 bits, so two queries never share one.
const HASH_DIGITS: usize = 32;

/// The saved workflow a rendered query runs through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedWorkflow {
    /// `amp_` and the first 32 hex digits of the SQL's SHA-256: 36 characters of letters,
    /// digits and `_`, which AMC's id rule allows (letters, digits, `.`, `-`, `_`; the AMC
    /// guide "Manage a workflow").
    pub id: AmcWorkflowId,
    /// The whole SHA-256 of the SQL, lower-case hex.
    pub sql_hash: String,
}

impl SavedWorkflow {
    /// The saved workflow of this rendered SQL: the same SQL always gives the same id.
    pub fn for_sql(sql: &str) -> Self {
        let sql_hash = sha256_hex(sql.as_bytes());
        let id = AmcWorkflowId(format!("{ID_PREFIX}{}", &sql_hash[..HASH_DIGITS]));
        Self { id, sql_hash }
    }
}

/// Whether a rendered query is too big to send ad hoc: more than `adhoc_max_bytes` bytes
/// of UTF-8 (the size of the `sqlQuery` AMC receives).
pub fn needed(sql: &str, adhoc_max_bytes: usize) -> bool {
    sql.len() > adhoc_max_bytes
}

/// Records, before AMC is asked to save it, that run `execution` on `instance` uses
/// `saved`: the instance's row is created or its `last_used_at` renewed, and the run's
/// `amc_workflow_id` set, in one statement. The cleanup duty holds a row's lock while it
/// deletes the workflow at AMC, so a use recorded meanwhile waits for that delete and then
/// records a new row (and the caller saves the workflow again); a use recorded first keeps
/// the workflow (it is in use, and recently used).
pub async fn record_use<C: ConnectionTrait>(
    conn: &C,
    instance: InstanceId,
    execution: ExecutionId,
    saved: &SavedWorkflow,
) -> Result<(), DbErr> {
    conn.execute_raw(stmt(
        "WITH used AS (INSERT INTO amc_saved_workflows (instance_id, workflow_id, sql_hash) \
           VALUES ($1, $2, $3) ON CONFLICT (instance_id, workflow_id) \
           DO UPDATE SET last_used_at = now() RETURNING workflow_id) \
         UPDATE executions SET amc_workflow_id = (SELECT workflow_id FROM used), \
           updated_at = now() WHERE id = $4",
        [
            instance.into(),
            saved.id.clone().into(),
            saved.sql_hash.clone().into(),
            execution.into(),
        ],
    ))
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_is_the_prefix_and_32_hex_digits_of_the_sql_hash() {
        let sql = "SELECT 1";
        let saved = SavedWorkflow::for_sql(sql);
        // sha256("SELECT 1")
        assert_eq!(
            saved.sql_hash,
            "e004ebd5b5532a4b85984a62f8ad48a81aa3460c1ca07701f386135d72cdecf5"
        );
        assert_eq!(saved.id.as_str(), "amp_e004ebd5b5532a4b85984a62f8ad48a8");
        assert_eq!(saved.id.as_str().len(), 36);
        assert!(
            saved
                .id
                .as_str()
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
        );
        assert_eq!(SavedWorkflow::for_sql(sql), saved);
        assert_ne!(SavedWorkflow::for_sql("SELECT 2").id, saved.id);
    }

    #[test]
    fn only_a_query_over_the_limit_needs_one() {
        assert!(!needed("SELECT 1", 8));
        assert!(needed("SELECT 10", 8));
        // Bytes, not characters: "é" is two.
        assert!(needed("SELECT 'é'", 10));
        assert!(!needed("SELECT 'e'", 10));
    }
}
