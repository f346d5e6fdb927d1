//! Wire types of the AMC reporting API: the create request, the workflow execution and
//! its status.

use crate::ids::{AmcExecutionId, AmcWorkflowId};
use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::fmt;

/// AMC's time format: `yyyy-MM-ddTHH:mm:ss`, no offset.
pub(crate) const AMC_TIME_FORMAT: &str = "%Y-%m-%dT%H:%M:%S";

/// What an execution runs: SQL sent inline (ad hoc), or a saved workflow by its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecutionQuery {
    /// `workflow.sqlQuery` (one line, see [`crate::sql::render`]).
    AdHoc(String),
    /// `workflowId` of a saved workflow (created first, see
    /// [`super::AmcClient::save_workflow`]).
    Saved(AmcWorkflowId),
}

/// An execution of `query` over an explicit window read in the IANA zone `time_zone`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateExecution {
    pub query: ExecutionQuery,
    pub time_window_start: NaiveDateTime,
    pub time_window_end: NaiveDateTime,
    pub time_zone: String,
}

impl CreateExecution {
    /// The JSON body of `POST …/workflowExecutions`.
    pub fn to_body(&self) -> Value {
        let mut body = json!({
            "timeWindowType": "EXPLICIT",
            "timeWindowStart": self.time_window_start.format(AMC_TIME_FORMAT).to_string(),
            "timeWindowEnd": self.time_window_end.format(AMC_TIME_FORMAT).to_string(),
            "timeWindowTimeZone": self.time_zone,
        });
        match &self.query {
            ExecutionQuery::AdHoc(sql) => body["workflow"] = json!({ "sqlQuery": sql }),
            ExecutionQuery::Saved(id) => body["workflowId"] = json!(id),
        }
        body
    }
}

/// An execution status; never fails to parse (unknown values land in `Unknown`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum AmcStatus {
    Pending,
    Running,
    Succeeded,
    Failed,
    Cancelled,
    /// Anything else, e.g. the legacy `REJECTED` (terminal, failed) or `PUBLISHING`
    /// (still running).
    Unknown(String),
}

impl AmcStatus {
    pub fn as_str(&self) -> &str {
        match self {
            AmcStatus::Pending => "PENDING",
            AmcStatus::Running => "RUNNING",
            AmcStatus::Succeeded => "SUCCEEDED",
            AmcStatus::Failed => "FAILED",
            AmcStatus::Cancelled => "CANCELLED",
            AmcStatus::Unknown(s) => s,
        }
    }

    /// SUCCEEDED, FAILED, CANCELLED and REJECTED; other unknown values are not terminal.
    pub fn is_terminal(&self) -> bool {
        match self {
            AmcStatus::Succeeded | AmcStatus::Failed | AmcStatus::Cancelled => true,
            AmcStatus::Unknown(s) => s == "REJECTED",
            AmcStatus::Pending | AmcStatus::Running => false,
        }
    }

    /// FAILED and REJECTED.
    pub fn is_failed(&self) -> bool {
        match self {
            AmcStatus::Failed => true,
            AmcStatus::Unknown(s) => s == "REJECTED",
            _ => false,
        }
    }
}

impl From<String> for AmcStatus {
    fn from(s: String) -> Self {
        match s.as_str() {
            "PENDING" => AmcStatus::Pending,
            "RUNNING" => AmcStatus::Running,
            "SUCCEEDED" => AmcStatus::Succeeded,
            "FAILED" => AmcStatus::Failed,
            "CANCELLED" => AmcStatus::Cancelled,
            _ => AmcStatus::Unknown(s),
        }
    }
}

impl From<AmcStatus> for String {
    fn from(s: AmcStatus) -> Self {
        s.as_str().to_owned()
    }
}

impl fmt::Display for AmcStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One workflow execution as AMC reports it (unknown fields ignored). Derived serde
/// reads the flat object; [`WorkflowExecution::from_value`] also accepts
/// `{"workflowExecution":{…}}` and `workflow.sqlQuery`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowExecution {
    pub workflow_execution_id: AmcExecutionId,
    pub status: AmcStatus,
    pub status_reason: Option<String>,
    /// Present with `includeWorkflow=true`.
    pub sql_query: Option<String>,
    pub workflow_id: Option<String>,
    pub time_window_start: Option<String>,
    pub time_window_end: Option<String>,
    pub time_window_start_original: Option<String>,
    pub time_window_end_original: Option<String>,
    pub time_window_time_zone_original: Option<String>,
    pub create_time: Option<String>,
    pub last_updated_time: Option<String>,
    pub message: Option<String>,
    pub details: Option<String>,
}

impl WorkflowExecution {
    /// Reads a flat or wrapped execution; a nested `workflow.sqlQuery` fills `sql_query`.
    pub fn from_value(mut value: Value) -> Result<Self, serde_json::Error> {
        if let Some(inner) = value.get_mut("workflowExecution").filter(|v| v.is_object()) {
            value = inner.take();
        }
        if let Value::Object(map) = &mut value
            && !map.get("sqlQuery").is_some_and(Value::is_string)
            && let Some(sql) = map
                .get("workflow")
                .and_then(|w| w.get("sqlQuery"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        {
            map.insert("sqlQuery".to_owned(), Value::String(sql));
        }
        serde_json::from_value(value)
    }

    /// Why it failed, in AMC's words: `statusReason`, else `message`, else `details`.
    pub fn failure_reason(&self) -> Option<&str> {
        [&self.status_reason, &self.message, &self.details]
            .into_iter()
            .find_map(|s| s.as_deref().filter(|s| !s.trim().is_empty()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"{ "createTime": "2023-09-18T22:01:56Z", "dataGaps": [], "disableAggregationControls": false,
  "executionCategory": "AD_HOC", "expireTime": "2023-09-19T22:01:56Z", "lastUpdatedTime": "2023-09-18T22:01:56Z",
  "parameterValues": {}, "status": "PENDING",
  "timeWindowStart": "2022-09-20T04:00:00Z", "timeWindowStartOriginal": "2022-09-20T00:00:00",
  "timeWindowEnd": "2022-09-30T04:00:00Z", "timeWindowEndOriginal": "2022-09-30T00:00:00",
  "timeWindowTimeZoneOriginal": "America/New_York", "waitUntil": "2023-09-18T21:01:56Z",
  "workflowExecutionId": "2b04762b-cbdb-47c7-be39-42a585ecd40e", "workflowExecutionTimeoutSeconds": 21600,
  "workflowId": "my-first-workflow" }"#;

    fn sample() -> Value {
        serde_json::from_str(SAMPLE).unwrap()
    }

    #[test]
    fn reads_the_flat_sample() {
        let e: WorkflowExecution = serde_json::from_str(SAMPLE).unwrap();
        assert_eq!(
            e.workflow_execution_id.as_str(),
            "2b04762b-cbdb-47c7-be39-42a585ecd40e"
        );
        assert_eq!(e.status, AmcStatus::Pending);
        assert_eq!(
            e.time_window_start_original.as_deref(),
            Some("2022-09-20T00:00:00")
        );
        assert_eq!(
            e.time_window_end_original.as_deref(),
            Some("2022-09-30T00:00:00")
        );
        assert_eq!(
            e.time_window_time_zone_original.as_deref(),
            Some("America/New_York")
        );
        assert_eq!(e.create_time.as_deref(), Some("2023-09-18T22:01:56Z"));
        assert_eq!(e.workflow_id.as_deref(), Some("my-first-workflow"));
        assert_eq!(e.status_reason, None);
        assert_eq!(WorkflowExecution::from_value(sample()).unwrap(), e);
        // Serialises back to camelCase and reads again.
        let again: WorkflowExecution =
            serde_json::from_value(serde_json::to_value(&e).unwrap()).unwrap();
        assert_eq!(again, e);
        assert_eq!(serde_json::to_value(&e).unwrap()["status"], "PENDING");
    }

    #[test]
    fn reads_the_wrapped_form_and_nested_sql() {
        let mut inner = sample();
        inner["workflow"] = json!({"sqlQuery": "SELECT 1"});
        let e = WorkflowExecution::from_value(json!({ "workflowExecution": inner })).unwrap();
        assert_eq!(
            e.workflow_execution_id.as_str(),
            "2b04762b-cbdb-47c7-be39-42a585ecd40e"
        );
        assert_eq!(e.sql_query.as_deref(), Some("SELECT 1"));
    }

    #[test]
    fn statuses() {
        let parse = |s: &str| AmcStatus::from(s.to_owned());
        assert_eq!(parse("RUNNING"), AmcStatus::Running);
        assert_eq!(parse("PUBLISHING"), AmcStatus::Unknown("PUBLISHING".into()));
        assert!(!parse("PUBLISHING").is_terminal());
        assert!(parse("REJECTED").is_terminal() && parse("REJECTED").is_failed());
        assert!(parse("FAILED").is_terminal() && parse("FAILED").is_failed());
        assert!(parse("SUCCEEDED").is_terminal() && !parse("SUCCEEDED").is_failed());
        assert!(parse("CANCELLED").is_terminal() && !parse("CANCELLED").is_failed());
        assert!(!parse("PENDING").is_terminal());
        let mut v = sample();
        v["status"] = json!("WEIRD");
        let e = WorkflowExecution::from_value(v).unwrap();
        assert_eq!(e.status.to_string(), "WEIRD");
    }

    #[test]
    fn failure_reason_order() {
        let mut v = sample();
        v["status"] = json!("FAILED");
        v["details"] = json!("d");
        let e = WorkflowExecution::from_value(v.clone()).unwrap();
        assert_eq!(e.failure_reason(), Some("d"));
        v["message"] = json!("m");
        assert_eq!(
            WorkflowExecution::from_value(v.clone())
                .unwrap()
                .failure_reason(),
            Some("m")
        );
        v["statusReason"] = json!("Was unable to compile workflow");
        assert_eq!(
            WorkflowExecution::from_value(v).unwrap().failure_reason(),
            Some("Was unable to compile workflow")
        );
    }

    #[test]
    fn create_body_has_no_offset() {
        let t = |s: &str| NaiveDateTime::parse_from_str(s, AMC_TIME_FORMAT).unwrap();
        let mut create = CreateExecution {
            query: ExecutionQuery::AdHoc("SELECT 1".into()),
            time_window_start: t("2024-01-01T00:00:00"),
            time_window_end: t("2024-01-08T00:00:00"),
            time_zone: "America/New_York".into(),
        };
        assert_eq!(
            create.to_body(),
            json!({ "workflow": { "sqlQuery": "SELECT 1" }, "timeWindowType": "EXPLICIT",
                "timeWindowStart": "2024-01-01T00:00:00", "timeWindowEnd": "2024-01-08T00:00:00",
                "timeWindowTimeZone": "America/New_York" })
        );
        // A saved workflow's run names it, and sends no SQL (AMC guide "Manage workflow
        // executions": `{"workflowId": "my-first-workflow", "timeWindowType": …}`).
        create.query = ExecutionQuery::Saved(AmcWorkflowId("amp_0123".into()));
        assert_eq!(
            create.to_body(),
            json!({ "workflowId": "amp_0123", "timeWindowType": "EXPLICIT",
                "timeWindowStart": "2024-01-01T00:00:00", "timeWindowEnd": "2024-01-08T00:00:00",
                "timeWindowTimeZone": "America/New_York" })
        );
    }
}
