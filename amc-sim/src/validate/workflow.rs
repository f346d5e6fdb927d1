//! Saved workflow and schedule bodies (`POST`/`PUT …/workflows`, `…/schedules`), checked
//! into the objects the simulator stores and answers back.

use chrono::{DateTime, Datelike, Utc};
use serde_json::{Map, Value};

use super::value::{field, lenient_bool, lenient_u64};

/// The days `aggregationStartDay` may name, Monday first.
const WEEKDAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// A valid saved workflow: its id, SQL, and the object as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowDef {
    pub id: String,
    pub sql: String,
    /// The request body with `workflowId` set, answered back by GET.
    pub body: Map<String, Value>,
}

/// A valid schedule: its id, the workflow it runs, and the object as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleDef {
    pub id: String,
    pub workflow_id: String,
    pub body: Map<String, Value>,
}

/// True for an id of letters, digits, `.`, `-` and `_` (the AMC guide "Manage a workflow").
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

/// Parses a workflow body; `path_id` is the id in the URL of a PUT (the body's
/// `workflowId` may be left out there, or must agree).
pub fn parse_workflow(body: &[u8], path_id: Option<&str>) -> Result<WorkflowDef, String> {
    let mut obj = object(body)?;
    let id = id_field(&obj, "workflowId", path_id)?;
    let sql = match obj.get("sqlQuery") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        Some(Value::String(_)) => {
            return Err("Invalid sqlQuery: the query must not be empty.".to_owned());
        }
        None | Some(Value::Null) => return Err("sqlQuery is required.".to_owned()),
        Some(other) => return Err(format!("Invalid sqlQuery: {other}")),
    };
    match obj.get("inputParameters") {
        None | Some(Value::Null) => {}
        Some(Value::Array(params)) => {
            if let Some(i) = params
                .iter()
                .position(|p| !p.get("name").is_some_and(Value::is_string))
            {
                return Err(format!(
                    "inputParameters[{i}] must be an object with a name."
                ));
            }
        }
        Some(_) => return Err("inputParameters must be a list.".to_owned()),
    }
    obj.insert("workflowId".to_owned(), Value::String(id.clone()));
    Ok(WorkflowDef { id, sql, body: obj })
}

/// Parses a schedule body (`path_id` as for [`parse_workflow`]); `now` picks the default
/// `aggregationStartDay` of a weekly schedule (the day it is created, per the AMC guide
/// "Manage a workflow schedule"). `scheduleEnabled` and `aggregationHourUtc` are stored as a
/// boolean and a number whichever form they came in.
pub fn parse_schedule(
    body: &[u8],
    path_id: Option<&str>,
    now: DateTime<Utc>,
) -> Result<ScheduleDef, String> {
    let mut obj = object(body)?;
    let id = id_field(&obj, "scheduleId", path_id)?;
    let workflow_id = match obj.get("workflowId") {
        Some(Value::String(w)) if !w.is_empty() => w.clone(),
        None | Some(Value::Null) => return Err("workflowId is required.".to_owned()),
        Some(other) => return Err(format!("Invalid workflowId: {other}")),
    };
    let period = field(&obj, "aggregationPeriod", "Daily or Weekly", |v| {
        v.as_str()
            .filter(|p| p.eq_ignore_ascii_case("daily") || p.eq_ignore_ascii_case("weekly"))
            .map(str::to_owned)
    })?;
    let day = field(&obj, "aggregationStartDay", "a day of the week", |v| {
        let d = v.as_str()?;
        WEEKDAYS
            .iter()
            .any(|w| w.eq_ignore_ascii_case(d))
            .then(|| d.to_owned())
    })?;
    let hour = field(&obj, "aggregationHourUtc", "an hour from 0 to 23", |v| {
        lenient_u64(v).filter(|h| *h < 24)
    })?;
    let enabled = field(
        &obj,
        "scheduleEnabled",
        "a boolean (or \"True\"/\"False\")",
        lenient_bool,
    )?;
    obj.insert("scheduleId".to_owned(), Value::String(id.clone()));
    if let Some(h) = hour {
        obj.insert("aggregationHourUtc".to_owned(), Value::from(h));
    }
    if let Some(e) = enabled {
        obj.insert("scheduleEnabled".to_owned(), Value::Bool(e));
    }
    let weekly = period.is_some_and(|p| p.eq_ignore_ascii_case("weekly"));
    if weekly && day.is_none() {
        let today = WEEKDAYS[now.weekday().num_days_from_monday() as usize];
        obj.insert("aggregationStartDay".to_owned(), Value::from(today));
    }
    Ok(ScheduleDef {
        id,
        workflow_id,
        body: obj,
    })
}

fn object(body: &[u8]) -> Result<Map<String, Value>, String> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(obj)) => Ok(obj),
        Ok(_) => Err("Request body must be a JSON object.".to_owned()),
        Err(e) => Err(format!("Unable to parse request body as JSON: {e}")),
    }
}

/// The id field `name`: required on create, optional (but equal) on update.
fn id_field(obj: &Map<String, Value>, name: &str, path_id: Option<&str>) -> Result<String, String> {
    let id = match (obj.get(name), path_id) {
        (None | Some(Value::Null), Some(p)) => p.to_owned(),
        (None | Some(Value::Null), None) => return Err(format!("{name} is required.")),
        (Some(Value::String(s)), _) => s.clone(),
        (Some(other), _) => return Err(format!("Invalid {name}: {other}")),
    };
    if let Some(p) = path_id.filter(|p| *p != id) {
        return Err(format!(
            "{name} {id} in the body does not match {p} in the path."
        ));
    }
    if !valid_id(&id) {
        return Err(format!(
            "Invalid {name}: '{id}'. It may contain only letters, digits, periods, dashes and underscores."
        ));
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        // A Tuesday.
        DateTime::parse_from_rfc3339("2024-01-02T10:00:00Z")
            .expect("valid")
            .to_utc()
    }

    #[test]
    fn workflow_ids_follow_the_guide() {
        assert!(valid_id("Streaming_T.V_Performance-Report2023"));
        for bad in ["", "has space", "slash/id", "é"] {
            assert!(!valid_id(bad), "{bad}");
        }
    }

    #[test]
    fn workflows_need_an_id_and_sql() {
        let ok = parse_workflow(
            br#"{"workflowId":"wf-1","sqlQuery":"\nSELECT 1\n","filteredReasonColumn":"true"}"#,
            None,
        )
        .expect("valid");
        assert_eq!(ok.id, "wf-1");
        assert_eq!(ok.body["filteredReasonColumn"], "true");
        let put = parse_workflow(br#"{"sqlQuery":"SELECT 2"}"#, Some("wf-1")).expect("put");
        assert_eq!(put.body["workflowId"], "wf-1");
        for bad in [
            json!({"sqlQuery": "SELECT 1"}),
            json!({"workflowId": "bad id", "sqlQuery": "SELECT 1"}),
            json!({"workflowId": "wf"}),
            json!({"workflowId": "wf", "sqlQuery": "  "}),
            json!({"workflowId": "wf", "sqlQuery": "SELECT 1", "inputParameters": [{"dataType": "STRING"}]}),
            json!([1]),
        ] {
            assert!(
                parse_workflow(bad.to_string().as_bytes(), None).is_err(),
                "{bad}"
            );
        }
        assert!(parse_workflow(br#"{"workflowId":"other","sqlQuery":"S"}"#, Some("wf-1")).is_err());
    }

    #[test]
    fn schedules_take_the_sample_types() {
        let s = parse_schedule(
            br#"{"scheduleId":"s1","workflowId":"wf-1","aggregationHourUtc":"8",
                 "aggregationPeriod":"Weekly","scheduleEnabled":"True"}"#,
            None,
            now(),
        )
        .expect("valid");
        assert_eq!(s.workflow_id, "wf-1");
        assert_eq!(s.body["scheduleEnabled"], true);
        assert_eq!(s.body["aggregationHourUtc"], 8);
        assert_eq!(s.body["aggregationStartDay"], "Tuesday");
        for bad in [
            json!({"workflowId": "wf-1"}),
            json!({"scheduleId": "s1"}),
            json!({"scheduleId": "s1", "workflowId": "wf-1", "aggregationPeriod": "Hourly"}),
            json!({"scheduleId": "s1", "workflowId": "wf-1", "aggregationHourUtc": 24}),
            json!({"scheduleId": "s1", "workflowId": "wf-1", "aggregationStartDay": "Caturday"}),
            json!({"scheduleId": "s1", "workflowId": "wf-1", "scheduleEnabled": "sometimes"}),
        ] {
            assert!(
                parse_schedule(bad.to_string().as_bytes(), None, now()).is_err(),
                "{bad}"
            );
        }
    }
}
