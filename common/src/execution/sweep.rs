//! Executions found in bulk: what the reconciler re-enqueues (overdue steps, queued runs
//! waiting for an admission, cancellations not carried out), and the runs a user's
//! re-authorisation resumes.

use super::ExecutionStatus as Status;
use crate::ids::{ExecutionId, InstanceId, UserId};
use crate::jobs::{Step, StepKind};
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement};
use std::time::Duration;

fn stmt(sql: &str, values: impl IntoIterator<Item = sea_orm::Value>) -> Statement {
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}

/// One instance per account that has queued runs due now (an admission covers its
/// account; a run triggered for a later instant is not due before it).
pub async fn instances_with_queued_runs<C: ConnectionTrait>(
    conn: &C,
    limit: u64,
) -> Result<Vec<InstanceId>, DbErr> {
    let rows = conn
        .query_all_raw(stmt(
            "SELECT DISTINCT ON (i.account_id) e.instance_id FROM executions e \
             JOIN amc_instances i ON i.id = e.instance_id WHERE e.status = $2 \
               AND (e.next_check_at IS NULL OR e.next_check_at <= now()) \
             ORDER BY i.account_id LIMIT $1",
            [(limit as i64).into(), Status::Queued.into()],
        ))
        .await?;
    rows.iter().map(|r| r.try_get("", "instance_id")).collect()
}

/// Admitted runs whose cancellation, asked for more than `grace` ago, has not been
/// carried out though they never reached AMC (their cancel job was lost).
pub async fn unsubmitted_cancellations<C: ConnectionTrait>(
    conn: &C,
    grace: Duration,
    limit: u64,
) -> Result<Vec<ExecutionId>, DbErr> {
    let rows = conn
        .query_all_raw(stmt(
            "SELECT id FROM executions WHERE status = $3 AND cancel_requested_at IS NOT NULL \
             AND submit_started_at IS NULL AND cancel_requested_at < now() - make_interval(secs => $1) LIMIT $2",
            [
                grace.as_secs_f64().into(),
                (limit as i64).into(),
                Status::Submitting.into(),
            ],
        ))
        .await?;
    rows.iter().map(|r| r.try_get("", "id")).collect()
}

/// After a user authorised again: their runs already at AMC (running or fetching, with an
/// AMC id) whose next check lies in the future get it brought forward to now. Returns the
/// steps to enqueue.
pub async fn resume_after_reauth<C: ConnectionTrait>(
    conn: &C,
    user: UserId,
) -> Result<Vec<Step>, DbErr> {
    let rows = conn
        .query_all_raw(stmt(
            "UPDATE executions SET next_check_at = date_trunc('microseconds', now()), updated_at = now() \
             WHERE user_id = $1 AND status IN ($2, $3) AND amc_execution_id IS NOT NULL \
               AND next_check_at > now() RETURNING id, status, next_check_at",
            [user.into(), Status::Running.into(), Status::Fetching.into()],
        ))
        .await?;
    let mut steps = Vec::with_capacity(rows.len());
    for r in rows {
        let status: Status = r.try_get("", "status")?;
        let due: DateTime<Utc> = r.try_get("", "next_check_at")?;
        if let Some(kind) = StepKind::of_status(status) {
            steps.push(Step {
                kind,
                execution_id: r.try_get("", "id")?,
                due: Some(due),
                at: std::time::SystemTime::now(),
            });
        }
    }
    Ok(steps)
}
