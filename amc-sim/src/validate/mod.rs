//! Validation of a create-execution request (amc-api.md §8), into a checked [`CreateSpec`];
//! saved workflows and schedules are checked in [`workflow`].

mod value;
pub mod workflow;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde_json::{Map, Value};

pub use value::{field, lenient_bool, lenient_u64};

/// The local time format AMC uses for windows and list filters.
pub const LOCAL_FORMAT: &str = "%Y-%m-%dT%H:%M:%S";
/// Default `workflowExecutionTimeoutSeconds`.
pub const DEFAULT_TIMEOUT_SECS: u64 = 21_600;
/// Default largest ad hoc `sqlQuery`, in bytes (an assumption: no public source states
/// AMC's limit; see the README).
pub const DEFAULT_ADHOC_MAX_BYTES: usize = 102_400;
const WINDOW_TYPES: [&str; 6] = [
    "EXPLICIT",
    "MOST_RECENT_DAY",
    "MOST_RECENT_WEEK",
    "CURRENT_MONTH",
    "PREVIOUS_MONTH",
    "ALL",
];

/// A valid create request: ad hoc, or a run of a saved workflow (its SQL resolved).
#[derive(Debug, Clone)]
pub struct CreateSpec {
    pub sql: String,
    /// The saved workflow run, for a create by `workflowId`.
    pub workflow_id: Option<String>,
    pub window_type: String,
    pub start_original: Option<String>,
    pub end_original: Option<String>,
    pub time_zone: String,
    pub start_utc: DateTime<Utc>,
    pub end_utc: DateTime<Utc>,
    pub parameter_values: Map<String, Value>,
    pub timeout_secs: u64,
    pub disable_aggregation_controls: bool,
    pub ignore_data_gaps: Option<bool>,
}

/// What a create request is checked against besides its body.
pub struct CreateContext<'a> {
    /// The current time (relative windows).
    pub now: DateTime<Utc>,
    /// The largest ad hoc `sqlQuery` accepted, in bytes.
    pub adhoc_max_bytes: usize,
    /// The SQL of the saved workflow with this id, when it exists.
    pub saved_sql: &'a (dyn Fn(&str) -> Option<String> + Sync),
}

#[cfg(test)]
impl CreateContext<'_> {
    /// Ad hoc only (no saved workflows), default size limit.
    pub fn adhoc(now: DateTime<Utc>) -> CreateContext<'static> {
        CreateContext {
            now,
            adhoc_max_bytes: DEFAULT_ADHOC_MAX_BYTES,
            saved_sql: &|_| None,
        }
    }
}

/// Parses and checks a create body; the error is AMC's `details` text for a 400.
pub fn parse_create(body: &[u8], ctx: &CreateContext<'_>) -> Result<CreateSpec, String> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| format!("Unable to parse request body as JSON: {e}"))?;
    let obj = v.as_object().ok_or("Request body must be a JSON object.")?;
    let (sql, workflow_id) = sql_source(obj, ctx)?;
    let time_zone = match obj.get("timeWindowTimeZone") {
        None | Some(Value::Null) => "UTC".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => return Err(format!("Invalid timeWindowTimeZone: {other}")),
    };
    let tz: Tz = time_zone
        .parse()
        .map_err(|_| format!("Invalid timeWindowTimeZone: {time_zone}"))?;
    let window_type = match obj.get("timeWindowType") {
        None | Some(Value::Null) => "MOST_RECENT_DAY".to_owned(),
        Some(Value::String(s)) if WINDOW_TYPES.contains(&s.as_str()) => s.clone(),
        Some(other) => return Err(format!("Invalid timeWindowType: {other}")),
    };
    let (start_original, end_original, start_utc, end_utc) = if window_type == "EXPLICIT" {
        let start = string_field(obj, "timeWindowStart")?;
        let end = string_field(obj, "timeWindowEnd")?;
        let (Some(start), Some(end)) = (start, end) else {
            return Err(
                "timeWindowStart and timeWindowEnd are required when timeWindowType is EXPLICIT."
                    .to_owned(),
            );
        };
        let s = parse_window_time(&start, tz, "timeWindowStart")?;
        let e = parse_window_time(&end, tz, "timeWindowEnd")?;
        if s >= e {
            return Err("timeWindowStart must be before timeWindowEnd.".to_owned());
        }
        (Some(start), Some(end), s, e)
    } else {
        let (s, e) = relative_window(&window_type, tz, ctx.now)?;
        (None, None, s, e)
    };
    let parameter_values = match obj.get("parameterValues") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => {
            if let Some((k, _)) = m.iter().find(|(_, v)| !value::parameter_value_ok(v)) {
                return Err(format!(
                    "parameterValues.{k} must be a string, a number, a boolean or a list of those."
                ));
            }
            m.clone()
        }
        Some(_) => return Err("parameterValues must be an object.".to_owned()),
    };
    let timeout_secs = field(
        obj,
        "workflowExecutionTimeoutSeconds",
        "a positive integer (or its decimal string)",
        |v| lenient_u64(v).filter(|n| *n > 0),
    )?
    .unwrap_or(DEFAULT_TIMEOUT_SECS);
    Ok(CreateSpec {
        sql,
        workflow_id,
        window_type,
        start_original,
        end_original,
        time_zone,
        start_utc,
        end_utc,
        parameter_values,
        timeout_secs,
        disable_aggregation_controls: bool_field(obj, "disableAggregationControls")?
            .unwrap_or(false),
        ignore_data_gaps: field(
            obj,
            "ignoreDataGaps",
            "a boolean (or \"True\"/\"False\")",
            lenient_bool,
        )?,
    })
}

/// Parses `yyyy-MM-ddTHH:mm:ss` in `tz` (a trailing `Z` means UTC); other forms are rejected.
pub fn parse_local_time(s: &str, tz: Tz) -> Option<DateTime<Utc>> {
    if let Some(utc) = s.strip_suffix('Z') {
        let naive = NaiveDateTime::parse_from_str(utc, LOCAL_FORMAT).ok()?;
        return Some(naive.and_utc());
    }
    let naive = NaiveDateTime::parse_from_str(s, LOCAL_FORMAT).ok()?;
    tz.from_local_datetime(&naive)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

/// The SQL to run and, for a saved workflow, its id.
fn sql_source(
    obj: &Map<String, Value>,
    ctx: &CreateContext<'_>,
) -> Result<(String, Option<String>), String> {
    let workflow_id = obj.get("workflowId").filter(|v| !v.is_null());
    let sql = obj
        .get("workflow")
        .and_then(|w| w.get("sqlQuery"))
        .filter(|v| !v.is_null());
    match (workflow_id, sql) {
        (Some(_), Some(_)) | (None, None) => {
            Err("Exactly one of workflowId or workflow.sqlQuery must be provided.".to_owned())
        }
        (Some(Value::String(id)), None) => (ctx.saved_sql)(id)
            .map(|sql| (sql, Some(id.clone())))
            .ok_or_else(|| format!("Workflow with ID {id} does not exist.")),
        (Some(other), None) => Err(format!("Invalid workflowId: {other}")),
        (None, Some(Value::String(sql))) => {
            if sql.trim().is_empty() {
                Err("Invalid sqlQuery: the query must not be empty.".to_owned())
            } else if sql.len() > ctx.adhoc_max_bytes {
                Err(format!(
                    "Invalid sqlQuery: the query is {} bytes, more than the {} bytes allowed for an ad hoc workflow execution.",
                    sql.len(),
                    ctx.adhoc_max_bytes
                ))
            } else {
                Ok((sql.clone(), None))
            }
        }
        (None, Some(_)) => Err("workflow.sqlQuery must be a string.".to_owned()),
    }
}

fn string_field(obj: &Map<String, Value>, name: &str) -> Result<Option<String>, String> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(format!("Invalid {name}: {other}")),
    }
}

fn bool_field(obj: &Map<String, Value>, name: &str) -> Result<Option<bool>, String> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(format!("Invalid {name}: {other}")),
    }
}

fn parse_window_time(s: &str, tz: Tz, name: &str) -> Result<DateTime<Utc>, String> {
    parse_local_time(s, tz)
        .ok_or_else(|| format!("Invalid {name}: '{s}'. Expected format yyyy-MM-ddTHH:mm:ss."))
}

/// Windows of the non-EXPLICIT types, in local days of `tz`.
fn relative_window(
    kind: &str,
    tz: Tz,
    now: DateTime<Utc>,
) -> Result<(DateTime<Utc>, DateTime<Utc>), String> {
    let today = now.with_timezone(&tz).date_naive();
    let month_start = today.with_day(1).unwrap_or(today);
    let prev_month_start = (month_start - Duration::days(1))
        .with_day(1)
        .unwrap_or(month_start);
    let at = |d: NaiveDate| -> Result<DateTime<Utc>, String> {
        tz.from_local_datetime(&d.and_time(chrono::NaiveTime::MIN))
            .earliest()
            .map(|t| t.with_timezone(&Utc))
            .ok_or_else(|| format!("Cannot resolve local midnight of {d} in {tz}"))
    };
    Ok(match kind {
        "MOST_RECENT_DAY" => (at(today - Duration::days(1))?, at(today)?),
        "MOST_RECENT_WEEK" => (at(today - Duration::days(7))?, at(today)?),
        "CURRENT_MONTH" => (at(month_start)?, now),
        "PREVIOUS_MONTH" => (at(prev_month_start)?, at(month_start)?),
        _ => (
            at(NaiveDate::from_ymd_opt(2010, 1, 1).unwrap_or(today))?,
            now,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_780_000_000, 0).expect("valid")
    }

    fn create(body: Value) -> Result<CreateSpec, String> {
        parse_create(body.to_string().as_bytes(), &CreateContext::adhoc(now()))
    }

    fn explicit(sql: &str, start: &str, end: &str, tz: &str) -> Value {
        json!({"workflow":{"sqlQuery":sql},"timeWindowType":"EXPLICIT",
               "timeWindowStart":start,"timeWindowEnd":end,"timeWindowTimeZone":tz,
               "unknownField":1})
    }

    #[test]
    fn converts_window_to_utc() {
        let spec = create(explicit(
            "SELECT 1",
            "2022-09-20T00:00:00",
            "2022-09-30T00:00:00",
            "America/New_York",
        ))
        .expect("valid");
        assert_eq!(spec.start_utc.to_rfc3339(), "2022-09-20T04:00:00+00:00");
        assert_eq!(spec.end_utc.to_rfc3339(), "2022-09-30T04:00:00+00:00");
        assert_eq!(spec.timeout_secs, DEFAULT_TIMEOUT_SECS);
        assert_eq!(spec.start_original.as_deref(), Some("2022-09-20T00:00:00"));
    }

    #[test]
    fn rejects_what_amc_rejects() {
        let cases = [
            explicit(
                "SELECT 1",
                "2024-01-08T00:00:00",
                "2024-01-01T00:00:00",
                "UTC",
            ),
            explicit(
                "SELECT 1",
                "2024-01-01T00:00:00",
                "2024-01-01T00:00:00",
                "UTC",
            ),
            explicit(
                "SELECT 1",
                "2024-01-01T00:00:00",
                "2024-01-08T00:00:00",
                "Mars/Base",
            ),
            explicit("SELECT 1", "2024-01-01", "2024-01-08T00:00:00", "UTC"),
            explicit(
                "SELECT 1",
                "2024-01-01T00:00:00+02:00",
                "2024-01-08T00:00:00",
                "UTC",
            ),
            json!({"workflow":{"sqlQuery":"SELECT 1"},"timeWindowType":"EXPLICIT"}),
            json!({"workflow":{"sqlQuery":"SELECT 1"},"timeWindowType":"SOMETIMES"}),
            json!({"workflow":{"sqlQuery":"SELECT 1"},"workflowId":"wf"}),
            json!({"timeWindowType":"MOST_RECENT_DAY"}),
            json!({"workflow":{"sqlQuery":"SELECT 1"},"parameterValues":{"a":{"b":1}}}),
            json!({"workflow":{"sqlQuery":"SELECT 1"},"ignoreDataGaps":"maybe"}),
            json!({"workflow":{"sqlQuery":"SELECT 1"},"workflowExecutionTimeoutSeconds":"soon"}),
            json!({"workflow":{"sqlQuery":"SELECT 1"},"workflowExecutionTimeoutSeconds":0}),
            json!({"workflow":{"sqlQuery":" \n "}}),
            json!({"workflowId":"never-saved"}),
            json!([1]),
        ];
        for body in cases {
            assert!(create(body.clone()).is_err(), "{body}");
        }
    }

    #[test]
    fn accepts_z_suffix_and_relative_windows() {
        let spec = create(explicit(
            "SELECT 1",
            "2024-01-01T00:00:00Z",
            "2024-01-08T00:00:00",
            "UTC",
        ))
        .expect("valid");
        assert_eq!(spec.start_utc.to_rfc3339(), "2024-01-01T00:00:00+00:00");
        let day = create(json!({"workflow":{"sqlQuery":"SELECT 1"}})).expect("valid");
        assert_eq!(day.window_type, "MOST_RECENT_DAY");
        assert_eq!((day.end_utc - day.start_utc).num_hours(), 24);
    }

    #[test]
    fn accepts_sample_value_types_and_multi_line_sql() {
        let spec = create(json!({
            "workflow": {"sqlQuery": "\n  SELECT advertiser\n  FROM dsp_impressions\n"},
            "ignoreDataGaps": "True",
            "workflowExecutionTimeoutSeconds": "86400",
            "parameterValues": {"n": 9001, "ids": ["1", "2"], "s": "x"},
        }))
        .expect("valid");
        assert_eq!(spec.ignore_data_gaps, Some(true));
        assert_eq!(spec.timeout_secs, 86_400);
        assert!(spec.sql.contains('\n'));
    }

    #[test]
    fn ad_hoc_sql_has_a_size_limit_and_saved_workflows_resolve() {
        let big = format!("SELECT 1 /* {} */", "x".repeat(200));
        let saved = |id: &str| (id == "wf-1").then(|| big.clone());
        let ctx = CreateContext {
            now: now(),
            adhoc_max_bytes: 100,
            saved_sql: &saved,
        };
        let adhoc = json!({"workflow": {"sqlQuery": big}}).to_string();
        let err = parse_create(adhoc.as_bytes(), &ctx).expect_err("too big");
        assert!(err.contains("more than the 100 bytes"), "{err}");
        let run = parse_create(br#"{"workflowId":"wf-1"}"#, &ctx).expect("saved");
        assert_eq!(run.workflow_id.as_deref(), Some("wf-1"));
        assert_eq!(run.sql, big, "the size limit is for ad hoc SQL only");
    }
}
