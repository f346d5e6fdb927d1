//! The JSON Schema of a template's parameters: a deliberately small subset of JSON Schema
//! (draft 2020-12 keywords `type`, `properties`, `required`, `additionalProperties`,
//! `enum`, `minimum`, `maximum`, `minLength`, `maxLength`, `items`, `minItems`,
//! `maxItems`, plus the annotations `title`, `description`, `default`, `examples`,
//! `format`), checked when a template is saved and applied to the parameters of every
//! use. A schema using any other keyword is refused at save, naming it, rather than
//! silently not enforced.

use serde_json::{Map, Value};

/// A bad schema or a value it refuses: where (a dotted path) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct SchemaError {
    pub path: String,
    pub message: String,
}

fn err(path: &str, message: impl Into<String>) -> SchemaError {
    SchemaError {
        path: path.to_owned(),
        message: message.into(),
    }
}

const TYPES: [&str; 7] = [
    "string", "integer", "number", "boolean", "array", "object", "null",
];
const ANNOTATIONS: [&str; 5] = ["title", "description", "default", "examples", "format"];
const DEPTH: usize = 8;

/// Checks that `schema` (at `path`) is a schema this subset enforces.
pub fn check_schema(schema: &Value, path: &str) -> Result<(), SchemaError> {
    check_at(schema, path, 0)
}

fn check_at(schema: &Value, path: &str, depth: usize) -> Result<(), SchemaError> {
    let Value::Object(s) = schema else {
        return Err(err(path, "must be an object (a JSON Schema)"));
    };
    if depth > DEPTH {
        return Err(err(path, format!("nests deeper than {DEPTH} levels")));
    }
    for (k, v) in s {
        let at = format!("{path}.{k}");
        match k.as_str() {
            "type" => {
                let names: Vec<&Value> = match v {
                    Value::Array(a) if !a.is_empty() => a.iter().collect(),
                    Value::String(_) => vec![v],
                    _ => return Err(err(&at, "must be a type name or a list of them")),
                };
                for n in names {
                    if !n.as_str().is_some_and(|n| TYPES.contains(&n)) {
                        return Err(err(&at, format!("{n} is not a JSON Schema type")));
                    }
                }
            }
            "properties" => {
                let Value::Object(props) = v else {
                    return Err(err(&at, "must be an object of schemas"));
                };
                for (name, sub) in props {
                    check_at(sub, &format!("{at}.{name}"), depth + 1)?;
                }
            }
            "items" => check_at(v, &at, depth + 1)?,
            "required" => {
                if !v.as_array().is_some_and(|a| a.iter().all(Value::is_string)) {
                    return Err(err(&at, "must be a list of property names"));
                }
            }
            "additionalProperties" => {
                if !v.is_boolean() {
                    return Err(err(&at, "must be true or false"));
                }
            }
            "enum" => {
                if v.as_array().is_none_or(|a| a.is_empty()) {
                    return Err(err(&at, "must be a non-empty list"));
                }
            }
            "minimum" | "maximum" => {
                if !v.is_number() {
                    return Err(err(&at, "must be a number"));
                }
            }
            "minLength" | "maxLength" | "minItems" | "maxItems" => {
                if !v.is_u64() {
                    return Err(err(&at, "must be a whole number ≥ 0"));
                }
            }
            k if ANNOTATIONS.contains(&k) || k == "$schema" => {}
            other => {
                return Err(err(
                    &at,
                    format!("the keyword `{other}` is not supported here"),
                ));
            }
        }
    }
    Ok(())
}

fn is_type(v: &Value, t: &str) -> bool {
    match t {
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64() || v.as_f64().is_some_and(|f| f.fract() == 0.0),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        "null" => v.is_null(),
        _ => false,
    }
}

/// Checks `value` (at `path`) against a schema that passed [`check_schema`]; the error
/// names the first place it breaks.
pub fn validate(schema: &Value, value: &Value, path: &str) -> Result<(), SchemaError> {
    let Value::Object(s) = schema else {
        return Ok(());
    };
    if let Some(t) = s.get("type") {
        let names: Vec<&str> = match t {
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            other => other.as_str().into_iter().collect(),
        };
        if !names.iter().any(|n| is_type(value, n)) {
            return Err(err(path, format!("must be of type {}", names.join(" or "))));
        }
    }
    if let Some(Value::Array(options)) = s.get("enum")
        && !options.contains(value)
    {
        return Err(err(
            path,
            format!("must be one of {}", Value::Array(options.clone())),
        ));
    }
    if let Some(n) = value.as_f64() {
        if let Some(min) = s.get("minimum").and_then(Value::as_f64)
            && n < min
        {
            return Err(err(path, format!("must be at least {min}")));
        }
        if let Some(max) = s.get("maximum").and_then(Value::as_f64)
            && n > max
        {
            return Err(err(path, format!("must be at most {max}")));
        }
    }
    if let Some(text) = value.as_str() {
        let len = text.chars().count() as u64;
        if let Some(min) = s.get("minLength").and_then(Value::as_u64)
            && len < min
        {
            return Err(err(path, format!("must be at least {min} characters")));
        }
        if let Some(max) = s.get("maxLength").and_then(Value::as_u64)
            && len > max
        {
            return Err(err(path, format!("must be at most {max} characters")));
        }
    }
    if let Some(items) = value.as_array() {
        let n = items.len() as u64;
        if let Some(min) = s.get("minItems").and_then(Value::as_u64)
            && n < min
        {
            return Err(err(path, format!("must hold at least {min} items")));
        }
        if let Some(max) = s.get("maxItems").and_then(Value::as_u64)
            && n > max
        {
            return Err(err(path, format!("must hold at most {max} items")));
        }
        if let Some(item) = s.get("items") {
            for (i, v) in items.iter().enumerate() {
                validate(item, v, &format!("{path}.{i}"))?;
            }
        }
    }
    if let Some(obj) = value.as_object() {
        validate_object(s, obj, path)?;
    }
    Ok(())
}

fn validate_object(
    s: &Map<String, Value>,
    obj: &Map<String, Value>,
    path: &str,
) -> Result<(), SchemaError> {
    for name in s
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if !obj.contains_key(name) {
            return Err(err(&format!("{path}.{name}"), "is required"));
        }
    }
    let props = s.get("properties").and_then(Value::as_object);
    for (k, v) in obj {
        match props.and_then(|p| p.get(k)) {
            Some(sub) => validate(sub, v, &format!("{path}.{k}"))?,
            None if s.get("additionalProperties") == Some(&Value::Bool(false)) => {
                return Err(err(
                    &format!("{path}.{k}"),
                    "is not a parameter of the template",
                ));
            }
            None => {}
        }
    }
    Ok(())
}

/// The `default` of each property of an object schema.
pub fn defaults(schema: &Value) -> Map<String, Value> {
    schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| {
            p.iter()
                .filter_map(|(k, v)| v.get("default").map(|d| (k.clone(), d.clone())))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({"type": "object", "required": ["days"], "additionalProperties": false,
               "properties": {"days": {"type": "integer", "minimum": 1, "maximum": 90, "default": 7},
                              "asins": {"type": "array", "items": {"type": "string", "minLength": 10}},
                              "mode": {"enum": ["a", "b"]}}})
    }

    #[test]
    fn good_values_pass_and_each_break_is_named() {
        let s = schema();
        check_schema(&s, "parameters_schema").unwrap();
        validate(
            &s,
            &json!({"days": 30, "asins": ["B000000001"]}),
            "parameters",
        )
        .unwrap();
        let cases = [
            (json!({}), "parameters.days"),
            (json!({"days": "7"}), "parameters.days"),
            (json!({"days": 0}), "parameters.days"),
            (json!({"days": 7.5}), "parameters.days"),
            (json!({"days": 7, "asins": ["short"]}), "parameters.asins.0"),
            (json!({"days": 7, "mode": "c"}), "parameters.mode"),
            (json!({"days": 7, "zzz": 1}), "parameters.zzz"),
        ];
        for (v, at) in cases {
            assert_eq!(validate(&s, &v, "parameters").unwrap_err().path, at, "{v}");
        }
        assert_eq!(
            defaults(&s),
            json!({"days": 7}).as_object().cloned().unwrap()
        );
    }

    #[test]
    fn unsupported_or_malformed_schemas_are_refused_where_they_break() {
        for (s, at) in [
            (json!([]), "p"),
            (json!({"type": "text"}), "p.type"),
            (
                json!({"properties": {"x": {"pattern": "^a"}}}),
                "p.properties.x.pattern",
            ),
            (json!({"required": "x"}), "p.required"),
            (json!({"minLength": -1}), "p.minLength"),
        ] {
            assert_eq!(check_schema(&s, "p").unwrap_err().path, at, "{s}");
        }
    }
}
