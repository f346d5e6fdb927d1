//! One workflow execution and its AMC JSON rendering.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use std::time::Duration;

use crate::faults::{DetourStatus, FailReason, privacy_rejection};
use crate::validate::CreateSpec;

/// AMC execution statuses the simulator produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pending,
    Running,
    Succeeded,
    Failed,
    Cancelled,
    /// Legacy, not terminal: shown for a while before SUCCEEDED (injected).
    Publishing,
    /// Legacy failure: shown for a while before FAILED (injected).
    Rejected,
}

impl Status {
    /// AMC's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Running => "RUNNING",
            Self::Succeeded => "SUCCEEDED",
            Self::Failed => "FAILED",
            Self::Cancelled => "CANCELLED",
            Self::Publishing => "PUBLISHING",
            Self::Rejected => "REJECTED",
        }
    }

    /// PENDING or RUNNING.
    pub fn is_active(self) -> bool {
        matches!(self, Self::Pending | Self::Running)
    }
}

/// How a RUNNING execution will end, and when.
#[derive(Debug, Clone)]
pub struct Ending {
    pub at: DateTime<Utc>,
    pub status: Status,
    pub reason: Option<String>,
}

/// Injected run-level faults, drawn once at creation.
#[derive(Debug, Clone, Default)]
pub struct Fate {
    /// End FAILED with this reason instead of SUCCEEDED.
    pub fail: Option<FailReason>,
    /// Show this status for a while when ending.
    pub detour: Option<(DetourStatus, Duration)>,
    /// After SUCCEEDED, results stay unavailable this long.
    pub late_download: Option<Duration>,
}

/// A workflow execution.
#[derive(Debug, Clone)]
pub struct Run {
    pub id: Uuid,
    pub instance_id: String,
    pub workflow_id: String,
    pub spec: CreateSpec,
    pub created_at: DateTime<Utc>,
    pub last_updated: DateTime<Utc>,
    pub status: Status,
    pub ending: Option<Ending>,
    pub status_reason: Option<String>,
    /// The deterministic key of this run (request key + ordinal) for fault draws.
    pub fault_key: String,
    /// The request key (instance, SQL, window): runs with the same one are resubmissions.
    pub request_key: String,
    /// Injected run-level faults.
    pub fate: Fate,
    /// The ending after `ending` (a status detour's final status).
    pub then: Option<Ending>,
    /// When results become downloadable (set on SUCCEEDED).
    pub downloadable_at: Option<DateTime<Utc>>,
}

impl Run {
    /// A new PENDING run: of the saved workflow the spec names, or ad hoc (a `transient_`
    /// workflow id, as AMC gives).
    pub fn new(instance_id: &str, spec: CreateSpec, now: DateTime<Utc>) -> Self {
        let workflow_id = spec
            .workflow_id
            .clone()
            .unwrap_or_else(|| format!("transient_{}", Uuid::new_v4()));
        Self {
            id: Uuid::new_v4(),
            instance_id: instance_id.to_owned(),
            workflow_id,
            spec,
            created_at: now,
            last_updated: now,
            status: Status::Pending,
            ending: None,
            status_reason: None,
            fault_key: String::new(),
            request_key: String::new(),
            fate: Fate::default(),
            then: None,
            downloadable_at: None,
        }
    }

    /// PENDING → RUNNING at `at`; it will succeed after `duration`, or fail on its timeout.
    pub fn start(&mut self, at: DateTime<Utc>, duration: std::time::Duration) {
        let run_for = chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX);
        let timeout = chrono::Duration::seconds(
            i64::try_from(self.spec.timeout_secs).unwrap_or(i64::MAX / 1_000_000),
        );
        let ending = if run_for > timeout {
            Ending {
                at: at + timeout,
                status: Status::Failed,
                reason: Some(format!(
                    "Workflow execution timed out after {} seconds.",
                    self.spec.timeout_secs
                )),
            }
        } else {
            let end = at
                .checked_add_signed(run_for)
                .unwrap_or(DateTime::<Utc>::MAX_UTC);
            match self.fate.fail {
                Some(reason) => Ending {
                    at: end,
                    status: Status::Failed,
                    reason: Some(reason.text(
                        &self.id.to_string(),
                        &self.workflow_id,
                        self.spec.timeout_secs,
                    )),
                },
                None => Ending {
                    at: end,
                    status: Status::Succeeded,
                    reason: None,
                },
            }
        };
        self.status = Status::Running;
        self.last_updated = at;
        self.ending = Some(self.detour(ending));
    }

    /// Puts the injected status detour (if any) in front of `ending`.
    fn detour(&mut self, ending: Ending) -> Ending {
        let Some((status, lasts)) = self.fate.detour else {
            return ending;
        };
        let later = ending
            .at
            .checked_add_signed(chrono::Duration::from_std(lasts).unwrap_or(chrono::Duration::MAX))
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        match (status, ending.status) {
            (DetourStatus::Publishing, Status::Succeeded) => {
                self.then = Some(Ending {
                    at: later,
                    ..ending.clone()
                });
                Ending {
                    status: Status::Publishing,
                    ..ending
                }
            }
            (DetourStatus::Rejected, _) => {
                let reason = ending
                    .reason
                    .clone()
                    .or_else(|| Some(privacy_rejection(&self.id.to_string(), &self.workflow_id)));
                self.then = Some(Ending {
                    at: later,
                    status: Status::Failed,
                    reason: reason.clone(),
                });
                Ending {
                    at: ending.at,
                    status: Status::Rejected,
                    reason,
                }
            }
            _ => ending,
        }
    }

    /// RUNNING → its planned ending (then a detour's final status, when one follows).
    pub fn finish(&mut self) {
        if let Some(ending) = self.ending.take() {
            self.status = ending.status;
            self.last_updated = ending.at;
            self.status_reason = ending.reason;
            if self.status == Status::Succeeded {
                let late = self
                    .fate
                    .late_download
                    .and_then(|d| chrono::Duration::from_std(d).ok())
                    .unwrap_or_default();
                self.downloadable_at = ending.at.checked_add_signed(late);
            }
            self.ending = self.then.take();
        }
    }

    /// PENDING/RUNNING → CANCELLED at `at`.
    pub fn cancel(&mut self, at: DateTime<Utc>) {
        self.status = Status::Cancelled;
        self.last_updated = at;
        self.ending = None;
        self.then = None;
    }

    /// The flat WorkflowExecution object AMC answers.
    pub fn to_json(&self, include_workflow: bool) -> Value {
        let s = &self.spec;
        let mut v = json!({
            "workflowExecutionId": self.id.to_string(),
            "workflowId": self.workflow_id,
            "status": self.status.as_str(),
            "createTime": ts(self.created_at),
            "lastUpdatedTime": ts(self.last_updated),
            "expireTime": ts(self.created_at + chrono::Duration::hours(24)),
            "executionCategory": "AD_HOC",
            "dataGaps": [],
            "disableAggregationControls": s.disable_aggregation_controls,
            "parameterValues": s.parameter_values,
            "timeWindowType": s.window_type,
            "timeWindowStart": ts(s.start_utc),
            "timeWindowEnd": ts(s.end_utc),
            "timeWindowTimeZoneOriginal": s.time_zone,
            "workflowExecutionTimeoutSeconds": s.timeout_secs,
        });
        let Some(obj) = v.as_object_mut() else {
            return v;
        };
        if let Some(start) = &s.start_original {
            obj.insert("timeWindowStartOriginal".into(), json!(start));
        }
        if let Some(end) = &s.end_original {
            obj.insert("timeWindowEndOriginal".into(), json!(end));
        }
        if let Some(ignore) = s.ignore_data_gaps {
            obj.insert("ignoreDataGaps".into(), json!(ignore));
        }
        if let Some(reason) = &self.status_reason {
            obj.insert("statusReason".into(), json!(reason));
        }
        if include_workflow {
            obj.insert("sqlQuery".into(), json!(s.sql));
        }
        v
    }
}

/// AMC's timestamp form: UTC, whole seconds, `Z`.
pub fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}
