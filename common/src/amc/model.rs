//! AMC's request and response bodies.

use crate::ids::AmcExecutionId;
use chrono::NaiveDateTime;
use serde::{Deserialize, Deserializer, Serialize};

/// An ad hoc run: SQL on one line, an explicit window of local times in an IANA zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateExecution {
    pub sql_query: String,
    pub time_window_start: NaiveDateTime,
    pub time_window_end: NaiveDateTime,
    pub time_zone: String,
}

impl CreateExecution {
    pub(crate) fn body(&self) -> serde_json::Value {
        let f = crate::time_window::AMC_FORMAT;
        serde_json::json!({
            "workflow": { "sqlQuery": self.sql_query },
            "timeWindowType": "EXPLICIT",
            "timeWindowStart": self.time_window_start.format(f).to_string(),
            "timeWindowEnd": self.time_window_end.format(f).to_string(),
            "timeWindowTimeZone": self.time_zone,
        })
    }
}

/// AMC's status of a run. Unknown values never fail to parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AmcStatus {
    Pending,
    Running,
    Succeeded,
    Failed,
    Cancelled,
    Unknown(String),
}

impl AmcStatus {
    pub fn parse(s: &str) -> Self {
        match s {
            "PENDING" => Self::Pending,
            "RUNNING" => Self::Running,
            "SUCCEEDED" => Self::Succeeded,
            "FAILED" => Self::Failed,
            "CANCELLED" => Self::Cancelled,
            other => Self::Unknown(other.to_string()),
        }
    }

    /// FAILED, and the legacy REJECTED.
    pub fn is_failed(&self) -> bool {
        matches!(self, Self::Failed) || matches!(self, Self::Unknown(s) if s == "REJECTED")
    }

    pub fn is_terminal(&self) -> bool {
        matches!(self, Self::Succeeded | Self::Cancelled) || self.is_failed()
    }
}

impl<'de> Deserialize<'de> for AmcStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Self::parse(&String::deserialize(d)?))
    }
}

impl Serialize for AmcStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match self {
            Self::Pending => "PENDING",
            Self::Running => "RUNNING",
            Self::Succeeded => "SUCCEEDED",
            Self::Failed => "FAILED",
            Self::Cancelled => "CANCELLED",
            Self::Unknown(u) => u,
        })
    }
}

/// A workflow execution as AMC describes it (unknown fields ignored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowExecution {
    pub workflow_execution_id: AmcExecutionId,
    pub status: AmcStatus,
    #[serde(default)]
    pub status_reason: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub details: Option<String>,
    #[serde(default)]
    pub sql_query: Option<String>,
    #[serde(default)]
    pub time_window_start_original: Option<String>,
    #[serde(default)]
    pub time_window_end_original: Option<String>,
    #[serde(default)]
    pub time_window_time_zone_original: Option<String>,
    #[serde(default)]
    pub create_time: Option<String>,
    #[serde(default)]
    pub workflow_id: Option<String>,
}

impl WorkflowExecution {
    /// Why AMC failed the run: `statusReason`, else `message`, else `details`.
    pub fn failure_reason(&self) -> Option<&str> {
        self.status_reason
            .as_deref()
            .or(self.message.as_deref())
            .or(self.details.as_deref())
    }

    /// Accepts the flat object and the `{"workflowExecution": {…}}` wrapper.
    pub(crate) fn from_value(v: serde_json::Value) -> Result<Self, serde_json::Error> {
        match v.get("workflowExecution") {
            Some(inner) => serde_json::from_value(inner.clone()),
            None => serde_json::from_value(v),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_documented_create_response() {
        let v = serde_json::json!({ "createTime": "2023-09-18T22:01:56Z", "dataGaps": [], "status": "PENDING",
            "timeWindowStart": "2022-09-20T04:00:00Z", "timeWindowStartOriginal": "2022-09-20T00:00:00",
            "timeWindowEnd": "2022-09-30T04:00:00Z", "timeWindowEndOriginal": "2022-09-30T00:00:00",
            "timeWindowTimeZoneOriginal": "America/New_York",
            "workflowExecutionId": "2b04762b-cbdb-47c7-be39-42a585ecd40e", "workflowExecutionTimeoutSeconds": 21600,
            "workflowId": "my-first-workflow" });
        let e = WorkflowExecution::from_value(v.clone()).unwrap();
        assert_eq!(e.status, AmcStatus::Pending);
        assert_eq!(
            e.workflow_execution_id.as_str(),
            "2b04762b-cbdb-47c7-be39-42a585ecd40e"
        );
        assert_eq!(
            e.time_window_time_zone_original.as_deref(),
            Some("America/New_York")
        );
        let wrapped =
            WorkflowExecution::from_value(serde_json::json!({ "workflowExecution": v })).unwrap();
        assert_eq!(wrapped, e);
    }

    #[test]
    fn unknown_statuses_are_kept_and_rejected_is_a_failure() {
        assert_eq!(
            AmcStatus::parse("PUBLISHING"),
            AmcStatus::Unknown("PUBLISHING".into())
        );
        assert!(!AmcStatus::parse("PUBLISHING").is_terminal());
        assert!(AmcStatus::parse("REJECTED").is_failed());
    }
}
