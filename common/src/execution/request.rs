//! Turning a run request into a recordable execution: merge parameters with the
//! workflow's defaults, render the SQL safely onto one line, hash the request.

use crate::sql::{RenderError, render};
use serde_json::{Map, Value, json};

/// The rendered SQL and the parameters it was rendered with.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub sql_query: String,
    pub parameters: Value,
}

/// Merges `given` over the workflow's `defaults` (a given name must be a placeholder)
/// and renders the SQL to the one line AMC is sent.
pub fn render_run(
    sql: &str,
    defaults: &Value,
    given: &Map<String, Value>,
) -> Result<Rendered, RenderError> {
    let mut merged: Map<String, Value> = defaults.as_object().cloned().unwrap_or_default();
    for (k, v) in given {
        merged.insert(k.clone(), v.clone());
    }
    Ok(Rendered {
        sql_query: render(sql, &merged)?,
        parameters: Value::Object(merged),
    })
}

/// A stable hash of what a run request asked for (for `Idempotency-Key` comparison).
/// `serde_json` maps are ordered, so equal requests hash equally.
pub fn request_hash(
    workflow_id: crate::ids::WorkflowId,
    version: Option<i32>,
    parameters: &Map<String, Value>,
    window: &crate::time_window::TimeWindow,
) -> String {
    let mut canonical = json!({
        "workflow_id": workflow_id,
        "parameters": parameters,
        "start": window.start_amc(),
        "end": window.end_amc(),
        "time_zone": window.time_zone.name(),
    });
    // Only a request naming a version hashes it, so keys recorded before versions existed
    // still match their repeats.
    if let Some(v) = version {
        canonical["version"] = json!(v);
    }
    crate::crypto::sha256_hex(canonical.to_string().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_values_override_defaults_and_sql_is_one_line() {
        let defaults = json!({"n": 1, "country": "US"});
        let given = json!({"n": 5}).as_object().cloned().unwrap();
        let r = render_run(
            "SELECT *\nFROM t -- note\nWHERE n = {{n}} AND c = {{country}};",
            &defaults,
            &given,
        )
        .unwrap();
        assert_eq!(r.sql_query, "SELECT * FROM t WHERE n = 5 AND c = 'US'");
        assert_eq!(r.parameters, json!({"n": 5, "country": "US"}));
    }

    #[test]
    fn missing_and_unknown_parameters_are_named() {
        let e = render_run("SELECT {{a}}", &json!({}), &Map::new()).unwrap_err();
        assert!(e.to_string().contains('a'), "{e}");
        let given = json!({"zzz": 1}).as_object().cloned().unwrap();
        let e = render_run("SELECT 1", &json!({}), &given).unwrap_err();
        assert!(e.to_string().contains("zzz"), "{e}");
    }
}
