//! The worker's group commits for steps: status checks due together read their rows with
//! one statement, and steps rescheduled together move their rows with one statement and
//! push their next jobs with one Redis pipeline. A status check that finds nothing
//! changed thus costs a share of two statements, not a transaction of its own.

use chrono::{DateTime, Utc};
use common::execution::{DueStep, Reschedule, Status, read_due, reschedule_many};
use common::group::{BatchLimits, Call, Group};
use common::ids::ExecutionId;
use common::jobs::{Step, StepKind, enqueue_steps};
use common::telemetry::trace;
use queue::Producer;
use sea_orm::DatabaseConnection;
use std::collections::{HashMap, HashSet};
use std::time::SystemTime;
use tracing::Instrument;

/// A read of a due step, with the trace context of the check asking for it.
type Read = (Status, ExecutionId, DateTime<Utc>, Option<String>);
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

/// Handle to the step group commits; cheap to clone.
#[derive(Clone)]
pub struct Steps {
    reads: Group<Read, ReadAnswer>,
    nexts: Group<Next, NextAnswer>,
}

/// How a batch failed, as each of its callers sees it.
#[derive(Debug, thiserror::Error)]
#[error("batched step {what}: {message}")]
pub struct StepsError {
    what: &'static str,
    message: String,
}

impl Steps {
    /// Starts both group commits (inside tokio).
    pub fn start(db: DatabaseConnection, producer: Producer, limits: BatchLimits) -> Self {
        let rdb = db.clone();
        let reads = Group::start(limits, move |calls| {
            let db = rdb.clone();
            async move { read_batch(&db, calls).await }
        });
        let nexts = Group::start(limits, move |calls| {
            let (db, producer) = (db.clone(), producer.clone());
            async move { next_batch(&db, &producer, calls).await }
        });
        Self { reads, nexts }
    }

    /// The step's row if it is still in `status` with `next_check_at = due`.
    pub async fn read(
        &self,
        status: Status,
        id: ExecutionId,
        due: DateTime<Utc>,
    ) -> Result<Option<DueStep>, StepsError> {
        let err = |message| StepsError {
            what: "read",
            message,
        };
        self.reads
            .call((status, id, due, trace::outgoing()))
            .await
            .ok_or_else(|| err("the reader has stopped".into()))?
            .map_err(err)
    }

    /// Moves the row to its next check and pushes that check's job; `false` when the row
    /// had already moved (a twin did it, or the run went on).
    pub async fn reschedule(&self, next: Next) -> Result<bool, StepsError> {
        let err = |message| StepsError {
            what: "reschedule",
            message,
        };
        self.nexts
            .call(next)
            .await
            .ok_or_else(|| err("the writer has stopped".into()))?
            .map_err(err)
    }
}

async fn read_batch(db: &DatabaseConnection, calls: Vec<Call<Read, ReadAnswer>>) {
    // One statement serves many runs' checks: its span links to each of them.
    let span = tracing::info_span!("steps.read", runs = calls.len());
    trace::link_all(&span, calls.iter().filter_map(|c| c.request.3.as_deref()));
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
