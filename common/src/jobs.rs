//! Job payloads and their queues: the Redis contract between the API, the scheduler and
//! the workers. Each kind is a type implementing [`queue::Job`]: its queue's name is
//! written there and nowhere else. Payloads carry ids, never data; Postgres holds the
//! truth (DESIGN inv. 1). Their JSON is what earlier builds pushed, so jobs already queued
//! by them still decode (see the tests).
//!
//! A new kind is a payload type here with its `Job` impl, a handler file in
//! `worker/src/jobs/`, and one line in [`job_kinds!`](crate::job_kinds): the list of
//! kinds that [`ALL_QUEUES`], the worker's registration and its test driver are made from.

use crate::execution::ExecutionStatus;
use crate::ids::{DeliveryId, ExecutionId, InstanceId};
use chrono::{DateTime, Utc};
use queue::{Job, JobId, Producer, QueueError};
use serde::{Deserialize, Serialize};
use std::marker::PhantomData;
use std::time::{Duration, SystemTime};

/// One step of an execution (submit, poll, fetch or cancel, told apart by `K`).
///
/// `due` is the execution's `next_check_at` this job was scheduled for. A step only acts
/// when the row still holds that value, so twins (a redelivered job, a reconciler
/// re-push) cannot fork the chain: the first to move the row wins, the others drop.
#[derive(Debug, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct StepJob<K> {
    pub execution_id: ExecutionId,
    #[serde(default)]
    pub due: Option<DateTime<Utc>>,
    #[serde(skip)]
    kind: PhantomData<fn() -> K>,
}

impl<K> StepJob<K> {
    /// The step for this execution, due as its row says (`None`: whenever it is taken).
    pub fn new(execution_id: ExecutionId, due: Option<DateTime<Utc>>) -> Self {
        Self {
            execution_id,
            due,
            kind: PhantomData,
        }
    }
}

impl<K> Clone for StepJob<K> {
    fn clone(&self) -> Self {
        Self::new(self.execution_id, self.due)
    }
}

impl<K> PartialEq for StepJob<K> {
    fn eq(&self, other: &Self) -> bool {
        self.execution_id == other.execution_id && self.due == other.due
    }
}

/// Admits queued runs, and submits an admitted run to AMC.
#[derive(Debug)]
pub enum Submit {}
/// Checks an AMC run's status (a delayed job; never a sleep).
#[derive(Debug)]
pub enum Poll {}
/// Streams a finished run's results into the result store.
#[derive(Debug)]
pub enum Fetch {}
/// Carries a cancellation request to AMC.
#[derive(Debug)]
pub enum Cancel {}

pub type SubmitJob = StepJob<Submit>;
pub type PollJob = StepJob<Poll>;
pub type FetchJob = StepJob<Fetch>;
pub type CancelJob = StepJob<Cancel>;

impl Job for SubmitJob {
    const QUEUE: &'static str = "execution.submit";
}

impl Job for PollJob {
    const QUEUE: &'static str = "execution.poll";

    /// Status checks are due every few seconds per run: promoted in batches of a tenth of
    /// `AMP_POLL_MIN` (at most 100 ms late), so a worker tracking thousands of runs wakes
    /// a few times a second for many checks, not once per check.
    fn timer_granularity(poll_min: Duration) -> Duration {
        (poll_min / 10).min(Duration::from_millis(100))
    }
}

impl Job for FetchJob {
    const QUEUE: &'static str = "execution.fetch";
}

impl Job for CancelJob {
    const QUEUE: &'static str = "execution.cancel";

    fn concurrency(configured: usize) -> usize {
        configured.min(16)
    }
}

/// Admission for one instance (its account's queued runs into free slots).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdmitJob {
    pub instance_id: InstanceId,
}

impl Job for AdmitJob {
    const QUEUE: &'static str = "instance.admit";

    fn concurrency(configured: usize) -> usize {
        configured.min(8)
    }
}

/// Attempts one webhook delivery. `due` is the delivery's `next_attempt_at` this job was
/// scheduled for: only the attempt holding it may move the row (a twin drops).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliverJob {
    pub delivery_id: DeliveryId,
    pub due: DateTime<Utc>,
}

impl Job for DeliverJob {
    const QUEUE: &'static str = "webhook.deliver";
}

/// Every job kind, the one list: it hands the payload types to the macro named
/// `$then`, which makes what each kind needs from it. [`ALL_QUEUES`] is made here; the
/// worker's `jobs::register` (its consumers, and its test driver) from the same list, and
/// the worker does not build while a kind listed here has no handler.
#[macro_export]
macro_rules! job_kinds {
    ($then:ident) => {
        $then! {
            $crate::jobs::SubmitJob,
            $crate::jobs::PollJob,
            $crate::jobs::FetchJob,
            $crate::jobs::CancelJob,
            $crate::jobs::AdmitJob,
            $crate::jobs::DeliverJob,
        }
    };
}

macro_rules! all_queues {
    ($($job:ty),+ $(,)?) => {
        /// Every queue, in one place (the metrics read them all), from [`job_kinds!`].
        pub const ALL_QUEUES: [&str; crate::count_tts!($(($job))+)] = [$(<$job as Job>::QUEUE),+];
    };
}

crate::job_kinds!(all_queues);

/// Which step job carries an execution forward from a status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StepKind {
    Submit,
    Poll,
    Fetch,
    Cancel,
}

impl StepKind {
    /// The step of a run in `status` (`None`: nothing to do for it, or terminal).
    pub fn of_status(status: ExecutionStatus) -> Option<Self> {
        match status {
            ExecutionStatus::Submitting => Some(Self::Submit),
            ExecutionStatus::Running => Some(Self::Poll),
            ExecutionStatus::Fetching => Some(Self::Fetch),
            _ => None,
        }
    }

    /// The queue of this step (for logs and the queue stats).
    pub fn queue(self) -> &'static str {
        match self {
            Self::Submit => SubmitJob::QUEUE,
            Self::Poll => PollJob::QUEUE,
            Self::Fetch => FetchJob::QUEUE,
            Self::Cancel => CancelJob::QUEUE,
        }
    }
}

/// One step to enqueue: which, for which run, due when, runnable when.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub kind: StepKind,
    pub execution_id: ExecutionId,
    pub due: Option<DateTime<Utc>>,
    pub at: SystemTime,
    /// The trace context its job carries (`telemetry::trace::outgoing` of the step that
    /// scheduled it); `None` for a re-push or with tracing off.
    pub trace: Option<String>,
}

/// Enqueues steps of any kind, each runnable at its time, one pipeline per kind.
pub async fn enqueue_steps(producer: &Producer, steps: &[Step]) -> Result<Vec<JobId>, QueueError> {
    async fn of<K>(p: &Producer, steps: &[Step], kind: StepKind) -> Result<Vec<JobId>, QueueError>
    where
        StepJob<K>: Job,
    {
        let jobs: Vec<(StepJob<K>, SystemTime, Option<String>)> = steps
            .iter()
            .filter(|s| s.kind == kind)
            .map(|s| (StepJob::new(s.execution_id, s.due), s.at, s.trace.clone()))
            .collect();
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        p.enqueue_at_batch_traced(&jobs).await
    }
    let mut ids = of::<Submit>(producer, steps, StepKind::Submit).await?;
    ids.extend(of::<Poll>(producer, steps, StepKind::Poll).await?);
    ids.extend(of::<Fetch>(producer, steps, StepKind::Fetch).await?);
    ids.extend(of::<Cancel>(producer, steps, StepKind::Cancel).await?);
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_queued_by_earlier_builds_still_decode() {
        // Exactly what the previous build pushed (`StepJobV1`, `AdmitJobV1`).
        let j: PollJob =
            serde_json::from_str(r#"{"execution_id":"0190b0a0-0000-7000-8000-000000000000"}"#)
                .unwrap();
        assert_eq!(j.due, None);
        let j: SubmitJob = serde_json::from_str(
            r#"{"execution_id":"0190b0a0-0000-7000-8000-000000000000","due":"2026-12-01T10:00:00.123456Z"}"#,
        )
        .unwrap();
        assert!(j.due.is_some());
        let a: AdmitJob =
            serde_json::from_str(r#"{"instance_id":"0190b0a0-0000-7000-8000-000000000001"}"#)
                .unwrap();
        assert_eq!(
            a.instance_id.to_string(),
            "0190b0a0-0000-7000-8000-000000000001"
        );
    }

    #[test]
    fn due_round_trips_at_microsecond_precision_and_in_the_old_shape() {
        let due = crate::execution::now_micros();
        let j = FetchJob::new(ExecutionId::new(), Some(due));
        let text = serde_json::to_string(&j).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v.as_object().unwrap().len(), 2, "{text}");
        let back: FetchJob = serde_json::from_str(&text).unwrap();
        assert_eq!(back, j);
    }

    #[test]
    fn every_kind_has_a_queue_of_its_own() {
        let mut names = ALL_QUEUES.to_vec();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), ALL_QUEUES.len(), "{ALL_QUEUES:?}");
        assert!(ALL_QUEUES.contains(&DeliverJob::QUEUE));
    }

    #[test]
    fn the_queues_are_those_earlier_builds_used() {
        assert_eq!(
            [
                SubmitJob::QUEUE,
                PollJob::QUEUE,
                FetchJob::QUEUE,
                CancelJob::QUEUE,
                AdmitJob::QUEUE
            ],
            [
                "execution.submit",
                "execution.poll",
                "execution.fetch",
                "execution.cancel",
                "instance.admit"
            ]
        );
        assert_eq!(
            StepKind::of_status(ExecutionStatus::Running),
            Some(StepKind::Poll)
        );
        assert_eq!(StepKind::of_status(ExecutionStatus::Queued), None);
    }
}
