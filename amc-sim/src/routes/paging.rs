//! List paging as AMC does it: `limit` and an opaque `nextToken`; the last page carries no
//! `nextToken` at all (the AWS solution's client pages until the field is absent, and the
//! AMC guide's sample list has none; see the README).

use std::collections::HashMap;

use serde_json::{Map, Value};

/// Items per page when `limit` is not given.
pub(crate) const DEFAULT_LIMIT: usize = 50;
/// The largest `limit` accepted.
pub(crate) const MAX_LIMIT: usize = 1000;

/// The `limit` query parameter, or the default; AMC's 400 text when out of range.
pub(crate) fn limit(q: &HashMap<String, String>) -> Result<usize, String> {
    match q.get("limit") {
        None => Ok(DEFAULT_LIMIT),
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| format!("Invalid limit: {v}. Must be between 1 and {MAX_LIMIT}.")),
    }
}

/// The `nextToken` query parameter, when given and not empty.
pub(crate) fn next_token(q: &HashMap<String, String>) -> Option<&str> {
    q.get("nextToken")
        .map(String::as_str)
        .filter(|t| !t.is_empty())
}

/// `{"<key>": [items], "nextToken": "…"}`, without `nextToken` on the last page.
pub(crate) fn page_json(key: &str, items: Vec<Value>, next: Option<String>) -> Value {
    let mut obj = Map::new();
    obj.insert(key.to_owned(), Value::Array(items));
    if let Some(next) = next {
        obj.insert("nextToken".to_owned(), Value::String(next));
    }
    Value::Object(obj)
}
