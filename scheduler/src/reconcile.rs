//! One reconcile pass: Postgres says what is due; push a job for each piece of work whose
//! job is missing or late. Pushing a twin is harmless: handlers move rows by
//! compare-and-set on `(status, next_check_at)`.

use crate::Scheduler;
use common::execution::overdue_steps;
use common::ids::{ExecutionId, InstanceId};
use common::jobs::{AdmitJobV1, EXECUTION_CANCEL, INSTANCE_ADMIT, StepJobV1, step_queue};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use std::collections::HashMap;
use std::time::Duration;
use uuid::Uuid;

/// What a pass re-enqueued.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Reconciled {
    pub steps: usize,
    pub admissions: usize,
    pub cancels: usize,
}

impl Reconciled {
    pub fn total(&self) -> usize {
        self.steps + self.admissions + self.cancels
    }
}

/// At most this many rows of each kind per pass, so a huge backlog is fed gradually.
const BATCH: u64 = 5_000;

pub async fn once(s: &Scheduler) -> anyhow::Result<Reconciled> {
    let mut out = Reconciled::default();
    // A step job fires within milliseconds of its due time; one that is late by a whole
    // reconcile interval (at least a second) is presumed lost.
    let grace = s.config.reconcile_interval.max(Duration::from_secs(1));
    let mut by_queue: HashMap<&'static str, Vec<StepJobV1>> = HashMap::new();
    for (id, status, due) in overdue_steps(&s.db, grace, BATCH).await? {
        if let Some(q) = step_queue(&status) {
            by_queue.entry(q).or_default().push(StepJobV1 {
                execution_id: id,
                due: Some(due),
            });
        }
    }
    for (q, jobs) in by_queue {
        out.steps += jobs.len();
        s.producer.push_batch(q, &jobs).await?;
    }
    // One admission per account that has queued runs (admission covers the account).
    let rows =
        s.db.query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT DISTINCT ON (i.account_id) e.instance_id FROM executions e \
             JOIN amc_instances i ON i.id = e.instance_id WHERE e.status = 'queued' \
             ORDER BY i.account_id LIMIT $1",
            [(BATCH as i64).into()],
        ))
        .await?;
    let admits: Vec<AdmitJobV1> = rows
        .iter()
        .map(|r| {
            r.try_get::<Uuid>("", "instance_id").map(|i| AdmitJobV1 {
                instance_id: InstanceId(i),
            })
        })
        .collect::<Result<_, _>>()?;
    if !admits.is_empty() {
        out.admissions = admits.len();
        s.producer.push_batch(INSTANCE_ADMIT, &admits).await?;
    }
    // Cancellations of admitted runs that never reached AMC.
    let rows = s
        .db
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT id FROM executions WHERE status = 'submitting' AND cancel_requested_at IS NOT NULL \
             AND submit_started_at IS NULL AND cancel_requested_at < now() - make_interval(secs => $1) LIMIT $2",
            [grace.as_secs_f64().into(), (BATCH as i64).into()],
        ))
        .await?;
    let cancels: Vec<StepJobV1> = rows
        .iter()
        .map(|r| {
            r.try_get::<Uuid>("", "id").map(|i| StepJobV1 {
                execution_id: ExecutionId(i),
                due: None,
            })
        })
        .collect::<Result<_, _>>()?;
    if !cancels.is_empty() {
        out.cancels = cancels.len();
        s.producer.push_batch(EXECUTION_CANCEL, &cancels).await?;
    }
    Ok(out)
}
