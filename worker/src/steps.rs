//! The worker's group commits for steps: status checks due together read their rows with
//! one statement, and steps rescheduled together move their rows with one statement and
//! push their next jobs with one Redis pipeline. A status check that finds nothing
//! changed thus costs a share of two statements, not a transaction of its own.
//!
//! Submits that arrive together likewise begin with one statement (lease, the
//! submission's start and where each runs, [`Steps::begin_submission`]) and, once AMC has
//! answered them, move to `running` in one transaction whose first checks go out with one
//! pipeline ([`Steps::mark_running`]).

use chrono::{DateTime, Utc};
use common::execution::{
    DueStep, Reschedule, Standing, Status, Submitted, begin_submissions, mark_running_many,
    now_micros, read_due, reschedule_many, standings,
};
use common::group::{BatchLimits, Call, Group};
use common::ids::ExecutionId;
use common::jobs::{Step, StepKind, enqueue_steps};
use common::telemetry::trace;
use queue::Producer;
use sea_orm::DatabaseConnection;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime};
use tracing::Instrument;

/// A read of a due step, with the trace context of the check asking for it.
type Read = (
    Status,
    ExecutionId,
    DateTime<Utc>,
    Option<trace::SpanContext>,
);
type ReadAnswer = Result<Option<DueStep>, String>;

/// A step to schedule again (its next job goes to the queue of its status).
#[derive(Debug, Clone)]
pub struct Next {
    pub step: Reschedule,
    /// What the next step's job carries (`telemetry::trace::outgoing` of this step).
    pub trace: Option<String>,
}

/// Whether the row moved (and its next job was pushed).
type NextAnswer = Result<bool, String>;

/// A submit step to begin: its run, the `due` its job carries, and the span asking.
type Begin = (ExecutionId, DateTime<Utc>, Option<trace::SpanContext>);
/// The row leased for submission (the lease is its `next_check_at`).
type BeginAnswer = Result<Option<DueStep>, String>;
/// A run AMC accepted, with what its first check's job carries.
type Run = (Submitted, Option<String>);

/// Handle to the step group commits; cheap to clone.
#[derive(Clone)]
pub struct Steps {
    reads: Group<Read, ReadAnswer>,
    nexts: Group<Next, NextAnswer>,
    begins: Group<Begin, BeginAnswer>,
    runs: Group<Run, NextAnswer>,
    looks: Group<ExecutionId, Result<Option<Standing>, String>>,
}

/// How a batch failed, as each of its callers sees it.
#[derive(Debug, thiserror::Error)]
#[error("batched step {what}: {message}")]
pub struct StepsError {
    what: &'static str,
    message: String,
}

impl Steps {
    /// Starts the group commits (inside tokio); a submission's lease lasts `lease`.
    pub fn start(
        db: DatabaseConnection,
        producer: Producer,
        limits: BatchLimits,
        lease: Duration,
    ) -> Self {
        let rdb = db.clone();
        let reads = Group::start(limits, move |calls| {
            let db = rdb.clone();
            async move { read_batch(&db, calls).await }
        });
        let (ndb, np) = (db.clone(), producer.clone());
        let nexts = Group::start(limits, move |calls| {
            let (db, producer) = (ndb.clone(), np.clone());
            async move { next_batch(&db, &producer, calls).await }
        });
        let bdb = db.clone();
        let begins = Group::start(limits, move |calls| {
            let db = bdb.clone();
            async move { begin_batch(&db, lease, calls).await }
        });
        let rdb = db.clone();
        let runs = Group::start(limits, move |calls| {
            let (db, producer) = (rdb.clone(), producer.clone());
            async move { running_batch(&db, &producer, calls).await }
        });
        let looks = Group::start(limits, move |calls| {
            let db = db.clone();
            async move { look_batch(&db, calls).await }
        });
        Self {
            reads,
            nexts,
            begins,
            runs,
            looks,
        }
    }

    /// Where a run stands (its state and account), read with the others asked together;
    /// `None` if it (or its instance) no longer exists.
    pub async fn standing(&self, id: ExecutionId) -> Result<Option<Standing>, StepsError> {
        ask(&self.looks, "look", id).await
    }

    /// Leases a `submitting` row still due at `due` and records that its submission
    /// begins, if it can go straight to AMC (no submission in doubt, no cancel asked
    /// for); `None` otherwise (the step then takes its one-by-one path).
    pub async fn begin_submission(
        &self,
        id: ExecutionId,
        due: DateTime<Utc>,
    ) -> Result<Option<DueStep>, StepsError> {
        ask(
            &self.begins,
            "begin submission",
            (id, due, trace::current()),
        )
        .await
    }

    /// Moves a submitted run to `running` and pushes its first check; `false` when its
    /// lease was taken over meanwhile.
    pub async fn mark_running(&self, run: Submitted) -> Result<bool, StepsError> {
        ask(&self.runs, "mark running", (run, trace::outgoing())).await
    }

    /// The step's row if it is still in `status` with `next_check_at = due`.
    pub async fn read(
        &self,
        status: Status,
        id: ExecutionId,
        due: DateTime<Utc>,
    ) -> Result<Option<DueStep>, StepsError> {
        ask(&self.reads, "read", (status, id, due, trace::current())).await
    }

    /// Moves the row to its next check and pushes that check's job; `false` when the row
    /// had already moved (a twin did it, or the run went on).
    pub async fn reschedule(&self, next: Next) -> Result<bool, StepsError> {
        ask(&self.nexts, "reschedule", next).await
    }
}

/// One request to a group commit, its failure named by `what`.
pub(crate) async fn ask<Q: Send + 'static, A: Send + 'static>(
    group: &Group<Q, Result<A, String>>,
    what: &'static str,
    request: Q,
) -> Result<A, StepsError> {
    let err = |message| StepsError { what, message };
    group
        .call(request)
        .await
        .ok_or_else(|| err("its batch task has stopped".into()))?
        .map_err(err)
}

async fn read_batch(db: &DatabaseConnection, calls: Vec<Call<Read, ReadAnswer>>) {
    // One statement serves many runs' checks: its span links to each of them.
    let span = tracing::info_span!("steps.read", runs = calls.len());
    trace::link_each(&span, calls.iter().filter_map(|c| c.request.3.as_ref()));
    read_batch_in(db, calls).instrument(span).await
}

async fn read_batch_in(db: &DatabaseConnection, calls: Vec<Call<Read, ReadAnswer>>) {
    let mut by_status: HashMap<Status, Vec<(ExecutionId, DateTime<Utc>)>> = HashMap::new();
    for c in &calls {
        let (status, id, due, _) = c.request;
        by_status.entry(status).or_default().push((id, due));
    }
    let mut found: HashMap<(ExecutionId, DateTime<Utc>), DueStep> = HashMap::new();
    for (status, wanted) in by_status {
        match read_due(db, status, &wanted).await {
            Ok(rows) => {
                for s in rows {
                    if let Some(due) = s.row.next_check_at {
                        found.insert((s.row.id, due), s);
                    }
                }
            }
            Err(e) => {
                let msg = e.to_string();
                for c in calls {
                    c.answer(Err(msg.clone()));
                }
                return;
            }
        }
    }
    // A twin in the same batch (same id and due) gets nothing: only one acts.
    for c in calls {
        let (_, id, due, _) = &c.request;
        let step = found.remove(&(*id, *due));
        c.answer(Ok(step));
    }
}

async fn next_batch(
    db: &DatabaseConnection,
    producer: &Producer,
    calls: Vec<Call<Next, NextAnswer>>,
) {
    let span = tracing::info_span!("steps.reschedule", runs = calls.len());
    trace::link_all(
        &span,
        calls.iter().filter_map(|c| c.request.trace.as_deref()),
    );
    next_batch_in(db, producer, calls).instrument(span).await
}

async fn next_batch_in(
    db: &DatabaseConnection,
    producer: &Producer,
    calls: Vec<Call<Next, NextAnswer>>,
) {
    let steps: Vec<Reschedule> = calls.iter().map(|c| c.request.step.clone()).collect();
    let moved = match reschedule_many(db, &steps).await {
        Ok(m) => m,
        Err(e) => {
            let msg = e.to_string();
            for c in calls {
                c.answer(Err(msg.clone()));
            }
            return;
        }
    };
    let moved: HashMap<ExecutionId, _> = moved.into_iter().map(|m| (m.id, m)).collect();
    let mut jobs: Vec<Step> = Vec::new();
    let mut answered: HashSet<ExecutionId> = HashSet::new();
    let mut outcome = Vec::with_capacity(calls.len());
    for c in calls {
        let id = c.request.step.id;
        // Twins in one batch: the row moved once, so only the first of them pushes.
        let m = moved.get(&id).filter(|_| answered.insert(id));
        if let Some(m) = m {
            // A cancellation asked for meanwhile is carried out by the next step, now.
            let at = if m.cancel_requested {
                SystemTime::now()
            } else {
                m.next.into()
            };
            if let Some(kind) = StepKind::of_status(c.request.step.status) {
                jobs.push(Step {
                    kind,
                    execution_id: id,
                    due: Some(m.next),
                    at,
                    trace: c.request.trace.clone(),
                });
            }
        }
        outcome.push((c, m.is_some()));
    }
    if let Err(e) = enqueue_steps(producer, &jobs).await {
        // The rows moved: the reconciler re-pushes their jobs once they are overdue.
        let msg = e.to_string();
        for (c, _) in outcome {
            c.answer(Err(msg.clone()));
        }
        return;
    }
    for (c, moved) in outcome {
        c.answer(Ok(moved));
    }
}

async fn begin_batch(
    db: &DatabaseConnection,
    lease: Duration,
    calls: Vec<Call<Begin, BeginAnswer>>,
) {
    let span = tracing::info_span!("steps.begin_submission", runs = calls.len());
    trace::link_each(&span, calls.iter().filter_map(|c| c.request.2.as_ref()));
    async move {
        let wanted: Vec<(ExecutionId, DateTime<Utc>)> =
            calls.iter().map(|c| (c.request.0, c.request.1)).collect();
        let now = now_micros();
        let until = now + chrono::Duration::from_std(lease).unwrap_or_default();
        match begin_submissions(db, &wanted, until, now).await {
            Ok(rows) => {
                let mut found: HashMap<ExecutionId, DueStep> =
                    rows.into_iter().map(|s| (s.row.id, s)).collect();
                // Twins in one batch: the row was leased once, for the first of them.
                for c in calls {
                    let step = found.remove(&c.request.0);
                    c.answer(Ok(step));
                }
            }
            Err(e) => {
                let msg = e.to_string();
                for c in calls {
                    c.answer(Err(msg.clone()));
                }
            }
        }
    }
    .instrument(span)
    .await
}

async fn running_batch(
    db: &DatabaseConnection,
    producer: &Producer,
    calls: Vec<Call<Run, NextAnswer>>,
) {
    let span = tracing::info_span!("steps.mark_running", runs = calls.len());
    trace::link_all(&span, calls.iter().filter_map(|c| c.request.1.as_deref()));
    async move {
        let runs: Vec<Submitted> = calls.iter().map(|c| c.request.0.clone()).collect();
        let moved: HashSet<ExecutionId> = match mark_running_many(db, &runs).await {
            Ok(rows) => rows.into_iter().map(|r| r.id).collect(),
            Err(e) => {
                let msg = e.to_string();
                for c in calls {
                    c.answer(Err(msg.clone()));
                }
                return;
            }
        };
        let mut answered: HashSet<ExecutionId> = HashSet::new();
        let mut jobs = Vec::new();
        let mut outcome = Vec::with_capacity(calls.len());
        for c in calls {
            let (run, trace) = &c.request;
            let moved = moved.contains(&run.id) && answered.insert(run.id);
            if moved {
                jobs.push(Step {
                    kind: StepKind::Poll,
                    execution_id: run.id,
                    due: Some(run.first_check),
                    at: run.first_check.into(),
                    trace: trace.clone(),
                });
            }
            outcome.push((c, moved));
        }
        if let Err(e) = enqueue_steps(producer, &jobs).await {
            // The rows moved: the reconciler re-pushes their checks once they are overdue.
            let msg = e.to_string();
            for (c, _) in outcome {
                c.answer(Err(msg.clone()));
            }
            return;
        }
        for (c, moved) in outcome {
            c.answer(Ok(moved));
        }
    }
    .instrument(span)
    .await
}

async fn look_batch(
    db: &DatabaseConnection,
    calls: Vec<Call<ExecutionId, Result<Option<Standing>, String>>>,
) {
    let ids: Vec<ExecutionId> = calls.iter().map(|c| c.request).collect();
    match standings(db, &ids).await {
        Ok(found) => {
            let found: HashMap<ExecutionId, Standing> =
                found.into_iter().map(|s| (s.id, s)).collect();
            for c in calls {
                let s = found.get(&c.request).cloned();
                c.answer(Ok(s));
            }
        }
        Err(e) => {
            let msg = e.to_string();
            for c in calls {
                c.answer(Err(msg.clone()));
            }
        }
    }
}
