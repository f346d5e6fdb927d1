//! `GET /executions`: a user's runs, newest first (`created_at DESC, id DESC`), filtered,
//! one keyset page at a time. Each filter has an index ending in `(created_at, id)`
//! (migrations `m20261210_000001_execution_lists` and, for `batch_id`,
//! `m20261214_000001_batches`), so a page is one index range scan
//! however many runs the table holds. Several statuses are read as one such scan per
//! status, merged: each branch is already in order, so none reads more than a page.

use super::row::COLUMNS;
use super::{ExecutionRow, Status, TriggeredBy};
use crate::ids::{BatchId, CollectionId, ExecutionId, InstanceId, ScheduleId, UserId, WorkflowId};
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, FromQueryResult, Statement, Value};

/// What to list besides the user: every field set narrows the list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListFilter {
    pub workflow_id: Option<WorkflowId>,
    pub instance_id: Option<InstanceId>,
    /// Any of these statuses (empty: every status).
    pub statuses: Vec<Status>,
    pub triggered_by: Option<TriggeredBy>,
    pub schedule_id: Option<ScheduleId>,
    pub collection_id: Option<CollectionId>,
    pub batch_id: Option<BatchId>,
    /// Created strictly after this instant.
    pub created_after: Option<DateTime<Utc>>,
    /// Created strictly before this instant.
    pub created_before: Option<DateTime<Utc>>,
}

/// A page of the user's runs matching `filter`, newest first, after the `(created_at, id)`
/// position `after`; `limit` rows at most.
pub async fn list<C: ConnectionTrait>(
    db: &C,
    user: UserId,
    filter: &ListFilter,
    after: Option<(DateTime<Utc>, ExecutionId)>,
    limit: u64,
) -> Result<Vec<ExecutionRow>, DbErr> {
    ExecutionRow::find_by_statement(list_statement(user, filter, after, limit))
        .all(db)
        .await
}

/// The query of [`list`]. Statuses and origins are written as literals (they come from
/// closed enums, never from text a client sent), so the planner can match them to the
/// partial origin index and to each status' range of the status index.
pub fn list_statement(
    user: UserId,
    filter: &ListFilter,
    after: Option<(DateTime<Utc>, ExecutionId)>,
    limit: u64,
) -> Statement {
    let mut values: Vec<Value> = vec![user.into()];
    let mut wheres = vec!["user_id = $1".to_string()];
    let mut bind = |col: &str, op: &str, v: Value, wheres: &mut Vec<String>| {
        values.push(v);
        wheres.push(format!("{col} {op} ${}", values.len()));
    };
    if let Some(w) = filter.workflow_id {
        bind("workflow_id", "=", w.into(), &mut wheres);
    }
    if let Some(i) = filter.instance_id {
        bind("instance_id", "=", i.into(), &mut wheres);
    }
    if let Some(s) = filter.schedule_id {
        bind("schedule_id", "=", s.into(), &mut wheres);
    }
    if let Some(c) = filter.collection_id {
        bind("collection_id", "=", c.into(), &mut wheres);
    }
    if let Some(b) = filter.batch_id {
        bind("batch_id", "=", b.into(), &mut wheres);
    }
    if let Some(t) = filter.created_after {
        bind("created_at", ">", t.into(), &mut wheres);
    }
    if let Some(t) = filter.created_before {
        bind("created_at", "<", t.into(), &mut wheres);
    }
    if let Some((at, id)) = after {
        values.push(at.into());
        values.push(id.into());
        wheres.push(format!(
            "(created_at, id) < (${}, ${})",
            values.len() - 1,
            values.len()
        ));
    }
    if let Some(t) = filter.triggered_by {
        wheres.push(format!("triggered_by = '{}'", t.as_str()));
    }
    values.push(i64::try_from(limit).unwrap_or(i64::MAX).into());
    let limit = format!("LIMIT ${}", values.len());
    let order = "ORDER BY created_at DESC, id DESC";
    let mut statuses = filter.statuses.clone();
    statuses.sort_by_key(|s| s.as_str());
    statuses.dedup();
    let common = wheres.join(" AND ");
    let sql = match statuses.as_slice() {
        [] => format!("SELECT {COLUMNS} FROM executions WHERE {common} {order} {limit}"),
        [one] => format!(
            "SELECT {COLUMNS} FROM executions WHERE {common} AND status = '{}' {order} {limit}",
            one.as_str()
        ),
        many => {
            let branches: Vec<String> = many
                .iter()
                .map(|s| {
                    format!(
                        "(SELECT {COLUMNS} FROM executions WHERE {common} AND status = '{}' {order} {limit})",
                        s.as_str()
                    )
                })
                .collect();
            format!(
                "SELECT {COLUMNS} FROM ({}) e {order} {limit}",
                branches.join(" UNION ALL ")
            )
        }
    };
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_filters_the_user_and_the_cursor_bound_the_scan() {
        let user = UserId(uuid::Uuid::nil());
        let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let s = list_statement(
            user,
            &ListFilter::default(),
            Some((at, ExecutionId(uuid::Uuid::nil()))),
            51,
        );
        assert!(
            s.sql.contains(
                "WHERE user_id = $1 AND (created_at, id) < ($2, $3) ORDER BY created_at DESC, id DESC LIMIT $4"
            ),
            "{}",
            s.sql
        );
        assert_eq!(s.values.unwrap().0.len(), 4);
    }

    #[test]
    fn each_status_is_its_own_ordered_branch_and_literals_come_from_enums() {
        let filter = ListFilter {
            statuses: vec![Status::Failed, Status::Running, Status::Failed],
            triggered_by: Some(TriggeredBy::Schedule),
            ..Default::default()
        };
        let s = list_statement(UserId(uuid::Uuid::nil()), &filter, None, 10);
        assert_eq!(s.sql.matches("UNION ALL").count(), 1, "{}", s.sql);
        assert!(s.sql.contains("status = 'failed'"));
        assert!(s.sql.contains("status = 'running'"));
        assert_eq!(s.sql.matches("triggered_by = 'schedule'").count(), 2);
        assert!(
            s.sql
                .ends_with(") e ORDER BY created_at DESC, id DESC LIMIT $2")
        );
    }

    #[test]
    fn every_filter_binds_its_value() {
        let t = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let filter = ListFilter {
            workflow_id: Some(WorkflowId(uuid::Uuid::nil())),
            instance_id: Some(InstanceId(uuid::Uuid::nil())),
            statuses: vec![Status::Queued],
            triggered_by: Some(TriggeredBy::Api),
            schedule_id: Some(ScheduleId(uuid::Uuid::nil())),
            collection_id: Some(CollectionId(uuid::Uuid::nil())),
            batch_id: Some(BatchId(uuid::Uuid::nil())),
            created_after: Some(t),
            created_before: Some(t),
        };
        let s = list_statement(UserId(uuid::Uuid::nil()), &filter, None, 10);
        for part in [
            "workflow_id = $2",
            "instance_id = $3",
            "schedule_id = $4",
            "collection_id = $5",
            "batch_id = $6",
            "created_at > $7",
            "created_at < $8",
            "status = 'queued'",
            "LIMIT $9",
        ] {
            assert!(s.sql.contains(part), "{part}: {}", s.sql);
        }
    }
}
