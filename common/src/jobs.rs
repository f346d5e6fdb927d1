//! Job payloads and queue names: the Redis contract between the API, the scheduler and
//! the workers. Payloads carry ids, never data; Postgres holds the truth (DESIGN inv. 1).

use crate::ids::{ExecutionId, InstanceId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Admit queued runs and submit an admitted run to AMC.
pub const EXECUTION_SUBMIT: &str = "execution.submit";
/// Check an AMC run's status (a delayed job; never a sleep).
pub const EXECUTION_POLL: &str = "execution.poll";
/// Stream a finished run's results into the result store.
pub const EXECUTION_FETCH: &str = "execution.fetch";
/// Carry a cancellation request to AMC.
pub const EXECUTION_CANCEL: &str = "execution.cancel";
/// Admit the oldest queued runs of an instance into free slots.
pub const INSTANCE_ADMIT: &str = "instance.admit";

/// Every queue a worker consumes.
pub const ALL_QUEUES: [&str; 5] = [
    EXECUTION_SUBMIT,
    EXECUTION_POLL,
    EXECUTION_FETCH,
    EXECUTION_CANCEL,
    INSTANCE_ADMIT,
];

/// One step of an execution: submit, poll or fetch.
///
/// `due` is the execution's `next_check_at` this job was scheduled for. A step only acts
/// when the row still holds that value, so twins (a redelivered job, a reconciler
/// re-push) cannot fork the chain: the first to move the row wins, the others drop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepJobV1 {
    pub execution_id: ExecutionId,
    #[serde(default)]
    pub due: Option<DateTime<Utc>>,
}

/// Admission for one instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdmitJobV1 {
    pub instance_id: InstanceId,
}

/// The queue that carries the step for an execution in `status`.
pub fn step_queue(status: &str) -> Option<&'static str> {
    match status {
        "submitting" => Some(EXECUTION_SUBMIT),
        "running" => Some(EXECUTION_POLL),
        "fetching" => Some(EXECUTION_FETCH),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_payloads_without_due_still_decode() {
        let j: StepJobV1 =
            serde_json::from_str(r#"{"execution_id":"0190b0a0-0000-7000-8000-000000000000"}"#)
                .unwrap();
        assert_eq!(j.due, None);
    }

    #[test]
    fn due_round_trips_at_microsecond_precision() {
        let due = crate::execution::now_micros();
        let j = StepJobV1 {
            execution_id: ExecutionId::new(),
            due: Some(due),
        };
        let back: StepJobV1 = serde_json::from_str(&serde_json::to_string(&j).unwrap()).unwrap();
        assert_eq!(back, j);
    }
}
