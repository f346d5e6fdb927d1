//! One workflow execution and its AMC JSON rendering.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::validate::CreateSpec;

/// AMC execution statuses the simulator produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pending,
    Running,
    Succeeded,
    Failed,
    Cancelled,
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
}

impl Run {
    /// A new PENDING ad hoc run.
    pub fn new(instance_id: &str, spec: CreateSpec, now: DateTime<Utc>) -> Self {
        Self {
            id: Uuid::new_v4(),
            instance_id: instance_id.to_owned(),
            workflow_id: format!("transient_{}", Uuid::new_v4()),
            spec,
            created_at: now,
            last_updated: now,
            status: Status::Pending,
            ending: None,
            status_reason: None,
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
            Ending {
                at: at
                    .checked_add_signed(run_for)
                    .unwrap_or(DateTime::<Utc>::MAX_UTC),
                status: Status::Succeeded,
                reason: None,
            }
        };
        self.status = Status::Running;
        self.last_updated = at;
        self.ending = Some(ending);
    }

    /// RUNNING → its planned ending.
    pub fn finish(&mut self) {
        if let Some(ending) = self.ending.take() {
            self.status = ending.status;
            self.last_updated = ending.at;
            self.status_reason = ending.reason;
        }
    }

    /// PENDING/RUNNING → CANCELLED at `at`.
    pub fn cancel(&mut self, at: DateTime<Utc>) {
        self.status = Status::Cancelled;
        self.last_updated = at;
        self.ending = None;
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
