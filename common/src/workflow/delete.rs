//! Deleting a workflow: refused while anything still runs it (runs not yet terminal,
//! enabled schedules, running or paused collections); otherwise the workflow leaves every
//! list and read, and its runs, schedules' history and collections stay readable.

use crate::ids::{UserId, WorkflowId};
use crate::repo::stmt;
use sea_orm::{ConnectionTrait, DbErr, FromQueryResult, TransactionTrait};

/// What still uses a workflow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromQueryResult)]
pub struct InUse {
    pub active_runs: i64,
    pub enabled_schedules: i64,
    pub running_collections: i64,
}

impl InUse {
    /// Whether anything uses it.
    pub fn any(&self) -> bool {
        self.active_runs + self.enabled_schedules + self.running_collections > 0
    }

    /// Why the workflow cannot be deleted, in words.
    pub fn reason(&self) -> String {
        let parts: Vec<String> = [
            (self.active_runs, "run(s) not yet finished"),
            (self.enabled_schedules, "enabled schedule(s)"),
            (self.running_collections, "running or paused collection(s)"),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
        format!("the workflow is in use: {}", parts.join(", "))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DeleteError {
    #[error("workflow not found")]
    NotFound,
    #[error("{}", .0.reason())]
    InUse(InUse),
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// Deletes one of the user's workflows unless it is in use. The workflow row is locked
/// first, so a run being written for it (its foreign key check locks the row too) is
/// either seen here or waits for the delete.
pub async fn delete(
    db: &sea_orm::DatabaseConnection,
    user: UserId,
    id: WorkflowId,
) -> Result<(), DeleteError> {
    let txn = db.begin().await?;
    let found = txn
        .query_one_raw(stmt(
            "SELECT id FROM workflows WHERE id = $1 AND user_id = $2 AND deleted_at IS NULL FOR UPDATE",
            [id.into(), user.into()],
        ))
        .await?;
    if found.is_none() {
        return Err(DeleteError::NotFound);
    }
    let sql = format!(
        "SELECT \
           (SELECT count(*) FROM executions WHERE workflow_id = $1 \
              AND status NOT IN {ended}) AS active_runs, \
           (SELECT count(*) FROM schedules WHERE workflow_id = $1 AND enabled) AS enabled_schedules, \
           (SELECT count(*) FROM collections WHERE workflow_id = $1 AND status IN ($2, $3)) \
             AS running_collections",
        ended = crate::execution::Status::ENDED_SQL,
    );
    let in_use = InUse::find_by_statement(stmt(
        &sql,
        [
            id.into(),
            crate::collection::CollectionStatus::Running.into(),
            crate::collection::CollectionStatus::Paused.into(),
        ],
    ))
    .one(&txn)
    .await?
    .unwrap_or_default();
    if in_use.any() {
        return Err(DeleteError::InUse(in_use));
    }
    txn.execute_raw(stmt(
        "UPDATE workflows SET deleted_at = now(), updated_at = now() WHERE id = $1",
        [id.into()],
    ))
    .await?;
    txn.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reason_names_each_use() {
        let u = InUse {
            active_runs: 2,
            enabled_schedules: 0,
            running_collections: 1,
        };
        assert!(u.any());
        assert_eq!(
            u.reason(),
            "the workflow is in use: 2 run(s) not yet finished, 1 running or paused collection(s)"
        );
        assert!(!InUse::default().any());
    }
}
