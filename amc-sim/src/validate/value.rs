//! Field values in the types AMC's own samples send them: booleans as `true` or `"True"`,
//! integers as `86400` or `"86400"` (amzn/ads-advanced-tools-docs
//! `amazon_marketing_cloud/AMC_API_sample_python_collection.ipynb`; the AWS solution's
//! `WFM_Interface.ipynb`; see the README's fidelity rules).

use serde_json::{Map, Value};

/// `true`/`false`, or a string spelling of one in any case (`"True"`, `"false"`).
pub fn lenient_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// A non-negative integer, or its decimal string (`"86400"`).
pub fn lenient_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Field `name` of `obj` read with `read`; absent or null is `None`, anything unreadable
/// is AMC's 400 text naming the field and what it must be.
pub fn field<T>(
    obj: &Map<String, Value>,
    name: &str,
    must_be: &str,
    read: impl Fn(&Value) -> Option<T>,
) -> Result<Option<T>, String> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => read(v)
            .map(Some)
            .ok_or_else(|| format!("Invalid {name}: {v}. It must be {must_be}.")),
    }
}

/// A `parameterValues` value: a string (the spec's type), a number or boolean (the AMC
/// guide "Manage a workflow" passes `9001`), or a list of those (ARRAY parameters).
pub fn parameter_value_ok(v: &Value) -> bool {
    let scalar = |v: &Value| matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_));
    scalar(v) || v.as_array().is_some_and(|items| items.iter().all(scalar))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_the_sample_spellings() {
        assert_eq!(lenient_bool(&json!(true)), Some(true));
        assert_eq!(lenient_bool(&json!("True")), Some(true));
        assert_eq!(lenient_bool(&json!("false")), Some(false));
        assert_eq!(lenient_bool(&json!("yes")), None);
        assert_eq!(lenient_bool(&json!(1)), None);
        assert_eq!(lenient_u64(&json!(86400)), Some(86_400));
        assert_eq!(lenient_u64(&json!("86400")), Some(86_400));
        assert_eq!(lenient_u64(&json!("-1")), None);
        assert_eq!(lenient_u64(&json!(1.5)), None);
        assert!(parameter_value_ok(&json!("a")));
        assert!(parameter_value_ok(&json!(9001)));
        assert!(parameter_value_ok(&json!(["1", 2])));
        assert!(!parameter_value_ok(&json!({"a": 1})));
        assert!(!parameter_value_ok(&json!(null)));
        assert!(!parameter_value_ok(&json!([["nested"]])));
    }
}
