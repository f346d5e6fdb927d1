//! One reconcile pass: Postgres says what is due; push a job for each piece of work whose
//! job is missing or late. Pushing a twin is harmless: handlers move rows by
//! compare-and-set on `(status, next_check_at)`.

use crate::Scheduler;
use chrono::{DateTime, Utc};
use common::execution::overdue_steps;
use common::ids::{ExecutionId, InstanceId};
use common::jobs::{AdmitJobV1, EXECUTION_CANCEL, INSTANCE_ADMIT, StepJobV1, step_queue};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Mutex;
use std::time::{Duration, Instant};
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

/// A step re-pushed once is not re-pushed again for this long: if it is still overdue,
/// the workers are behind (its twin waits in the queue), and pushing it every pass would
/// only add to the backlog. A job lost a second time is re-pushed after this.
const REPUSH_QUIET: Duration = Duration::from_secs(30);

/// The steps this process re-pushed lately, by `(id, due)`.
#[derive(Debug, Default)]
pub struct Repushes {
    at: Mutex<HashMap<(ExecutionId, DateTime<Utc>), Instant>>,
}

impl Repushes {
    /// The overdue steps not re-pushed within `quiet` of `now`, which it records as
    /// re-pushed now; entries older than `quiet` are forgotten.
    pub fn fresh(
        &self,
        overdue: Vec<(ExecutionId, String, DateTime<Utc>)>,
        now: Instant,
        quiet: Duration,
    ) -> Vec<(ExecutionId, String, DateTime<Utc>)> {
        let mut at = self.at.lock().unwrap_or_else(|e| e.into_inner());
        at.retain(|_, t| now.duration_since(*t) < quiet);
        overdue
            .into_iter()
            .filter(|(id, _, due)| match at.entry((*id, *due)) {
                Entry::Occupied(_) => false,
                Entry::Vacant(v) => {
                    v.insert(now);
                    true
                }
            })
            .collect()
    }
}

pub async fn once(s: &Scheduler) -> anyhow::Result<Reconciled> {
    let mut out = Reconciled::default();
    // A step job fires within milliseconds of its due time; one that is late by a whole
    // reconcile interval (at least a second) is presumed lost.
    let grace = s.config.reconcile_interval.max(Duration::from_secs(1));
    let mut by_queue: HashMap<&'static str, Vec<StepJobV1>> = HashMap::new();
    let overdue = overdue_steps(&s.db, grace, BATCH).await?;
    for (id, status, due) in s.repushes.fresh(overdue, Instant::now(), REPUSH_QUIET) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_is_re_pushed_once_per_quiet_period() {
        let r = Repushes::default();
        let (a, b) = (ExecutionId::new(), ExecutionId::new());
        let due = Utc::now();
        let t0 = Instant::now();
        let quiet = Duration::from_secs(30);
        let step = |id| (id, "running".to_string(), due);
        assert_eq!(r.fresh(vec![step(a)], t0, quiet).len(), 1);
        // Still overdue a pass later: its twin is queued, not lost.
        let later = t0 + Duration::from_secs(5);
        let again = r.fresh(vec![step(a), step(b)], later, quiet);
        assert_eq!(again, vec![step(b)]);
        // A step that moved on is a new step.
        let moved = (
            a,
            "running".to_string(),
            due + chrono::Duration::seconds(15),
        );
        assert_eq!(r.fresh(vec![moved.clone()], later, quiet), vec![moved]);
        // After the quiet period a step still overdue is pushed again.
        let much_later = t0 + Duration::from_secs(31);
        assert_eq!(r.fresh(vec![step(a)], much_later, quiet), vec![step(a)]);
    }
}
