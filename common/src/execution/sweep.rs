//! Executions found in bulk: what the reconciler re-enqueues (overdue steps, queued runs
//! waiting for an admission, cancellations not carried out), and the runs a user's
//! re-authorisation resumes.

use super::ExecutionStatus as Status;
use crate::ids::{ExecutionId, InstanceId, UserId};
use crate::jobs::{Step, StepKind};
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, QueryResult, Statement};
use serde::Deserialize;

fn stmt(sql: &str, values: impl IntoIterator<Item = sea_orm::Value>) -> Statement {
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}

/// The reconciler's findings among executions (DESIGN inv. 1).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Overdue {
    /// Steps overdue by more than the grace (their job was lost, e.g. Redis was flushed,
    /// or its worker died mid-step): `(id, status, next_check_at)`.
    pub steps: Vec<(ExecutionId, Status, DateTime<Utc>)>,
    /// One instance per account that has queued runs due now (an admission covers its
    /// account; a run triggered for a later instant is not due before it).
    pub queued_instances: Vec<InstanceId>,
    /// Admitted runs whose cancellation, asked for more than the grace ago, has not been
    /// carried out though they never reached AMC (their cancel job was lost).
    pub unsubmitted_cancels: Vec<ExecutionId>,
}

#[derive(Deserialize)]
struct OverdueStep {
    id: ExecutionId,
    status: Status,
    due: DateTime<Utc>,
}

impl Overdue {
    /// The columns of one SELECT that find them (read back by [`Overdue::from_row`]):
    /// `$3` is the grace in seconds, `$4` the most rows of each kind.
    pub(crate) fn columns() -> String {
        format!(
            "(SELECT coalesce(jsonb_agg(jsonb_build_object('id', o.id, 'status', o.status, 'due', o.next_check_at)), '[]'::jsonb) \
               FROM (SELECT id, status, next_check_at FROM executions WHERE status IN {at_amc} \
                       AND next_check_at < now() - make_interval(secs => $3) ORDER BY next_check_at LIMIT $4) o) AS overdue_steps, \
             (SELECT coalesce(jsonb_agg(q.instance_id), '[]'::jsonb) \
               FROM (SELECT DISTINCT ON (i.account_id) e.instance_id FROM executions e \
                       JOIN amc_instances i ON i.id = e.instance_id WHERE e.status = '{queued}' \
                       AND (e.next_check_at IS NULL OR e.next_check_at <= now()) ORDER BY i.account_id LIMIT $4) q) AS queued_instances, \
             (SELECT coalesce(jsonb_agg(c.id), '[]'::jsonb) \
               FROM (SELECT id FROM executions WHERE status = '{submitting}' AND cancel_requested_at IS NOT NULL \
                       AND submit_started_at IS NULL AND cancel_requested_at < now() - make_interval(secs => $3) LIMIT $4) c) \
               AS unsubmitted_cancels",
            at_amc = Status::AT_AMC_SQL,
            queued = Status::Queued,
            submitting = Status::Submitting,
        )
    }

    /// Reads the columns of [`Overdue::columns`].
    pub(crate) fn from_row(r: &QueryResult) -> Result<Self, DbErr> {
        fn column<T: serde::de::DeserializeOwned>(r: &QueryResult, c: &str) -> Result<T, DbErr> {
            let v: serde_json::Value = r.try_get("", c)?;
            serde_json::from_value(v).map_err(|e| DbErr::Type(format!("{c}: {e}")))
        }
        let steps: Vec<OverdueStep> = column(r, "overdue_steps")?;
        Ok(Self {
            steps: steps.into_iter().map(|s| (s.id, s.status, s.due)).collect(),
            queued_instances: column(r, "queued_instances")?,
            unsubmitted_cancels: column(r, "unsubmitted_cancels")?,
        })
    }
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
                trace: None,
            });
        }
    }
    Ok(steps)
}
