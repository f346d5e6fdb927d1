//! The methods each path answers, for the `Allow` header of a 405: read from the spec's
//! paths (under the `/api/v1` server) plus the operational endpoints outside it.

/// Path templates (`/api/v1/executions/{id}`) and their methods.
#[derive(Debug, Default)]
pub struct AllowTable {
    routes: Vec<(Vec<Segment>, Vec<String>)>,
}

#[derive(Debug, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param,
}

fn segments(path: &str) -> Vec<Segment> {
    path.trim_matches('/')
        .split('/')
        .map(|s| {
            if s.starts_with('{') && s.ends_with('}') {
                Segment::Param
            } else {
                Segment::Literal(s.to_owned())
            }
        })
        .collect()
}

impl AllowTable {
    /// The table of a spec (as `OpenApiService::spec()` renders it), its paths under
    /// `prefix`, plus `extra` paths with their methods.
    pub fn from_spec(spec: &str, prefix: &str, extra: &[(&str, &[&str])]) -> Self {
        let mut table = Self::default();
        let spec: serde_json::Value = serde_json::from_str(spec).unwrap_or_default();
        if let Some(paths) = spec["paths"].as_object() {
            for (path, ops) in paths {
                let methods = ops
                    .as_object()
                    .map(|o| o.keys().map(|m| m.to_uppercase()).collect())
                    .unwrap_or_default();
                table.add(&format!("{prefix}{path}"), methods);
            }
        }
        for (path, methods) in extra {
            table.add(path, methods.iter().map(|m| m.to_string()).collect());
        }
        table
    }

    fn add(&mut self, path: &str, mut methods: Vec<String>) {
        methods.sort();
        self.routes.push((segments(path), methods));
    }

    /// The methods of the path, comma-separated, if some route matches it.
    pub fn allowed(&self, path: &str) -> Option<String> {
        let wanted: Vec<&str> = path.trim_matches('/').split('/').collect();
        let mut methods: Vec<&str> = Vec::new();
        for (route, ms) in &self.routes {
            let matches = route.len() == wanted.len()
                && route.iter().zip(&wanted).all(|(r, w)| match r {
                    Segment::Param => !w.is_empty(),
                    Segment::Literal(l) => l == w,
                });
            if matches {
                methods.extend(ms.iter().map(String::as_str));
            }
        }
        methods.sort_unstable();
        methods.dedup();
        (!methods.is_empty()).then(|| methods.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_of_templates_and_extras() {
        let spec = r#"{"paths":{"/executions/{id}":{"get":{}},"/executions/{id}/cancel":{"post":{}},
            "/workflows":{"get":{},"post":{}}}}"#;
        let t = AllowTable::from_spec(spec, "/api/v1", &[("/healthz", &["GET"])]);
        assert_eq!(t.allowed("/api/v1/executions/abc").as_deref(), Some("GET"));
        assert_eq!(
            t.allowed("/api/v1/executions/abc/cancel").as_deref(),
            Some("POST")
        );
        assert_eq!(t.allowed("/api/v1/workflows").as_deref(), Some("GET, POST"));
        assert_eq!(t.allowed("/healthz").as_deref(), Some("GET"));
        assert_eq!(t.allowed("/api/v1/nothing"), None);
    }
}
