//! The routes of the spec, read from its paths (under the `/api/v1` server) plus the
//! operational endpoints outside it: the methods each path answers (the `Allow` header of
//! a 405), and the names of its path parameters (poem-openapi reports a bad one as
//! `param0`, `param1`, …).

/// Path templates (`/api/v1/executions/{id}`) and their methods.
#[derive(Debug, Default)]
pub struct AllowTable {
    routes: Vec<(Vec<Segment>, Vec<String>)>,
    /// Each route's template, kept for the life of the process (metrics label with it).
    templates: Vec<&'static str>,
}

fn matches(route: &[Segment], wanted: &[&str]) -> bool {
    route.len() == wanted.len()
        && route.iter().zip(wanted).all(|(r, w)| match r {
            Segment::Param(_) => !w.is_empty(),
            Segment::Literal(l) => l == w,
        })
}

#[derive(Debug, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
}

fn segments(path: &str) -> Vec<Segment> {
    path.trim_matches('/')
        .split('/')
        .map(|s| {
            if s.starts_with('{') && s.ends_with('}') {
                Segment::Param(s[1..s.len() - 1].to_owned())
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
        self.templates
            .push(Box::leak(path.to_owned().into_boxed_str()));
    }

    /// The template of the route that matches the path (`/api/v1/executions/{id}`).
    pub fn template(&self, path: &str) -> Option<&'static str> {
        let wanted: Vec<&str> = path.trim_matches('/').split('/').collect();
        self.routes
            .iter()
            .zip(&self.templates)
            .find(|((route, _), _)| matches(route, &wanted))
            .map(|(_, t)| *t)
    }

    /// The routes whose template matches the path.
    fn matching<'a>(
        &'a self,
        path: &'a str,
    ) -> impl Iterator<Item = &'a (Vec<Segment>, Vec<String>)> {
        let wanted: Vec<&str> = path.trim_matches('/').split('/').collect();
        self.routes
            .iter()
            .filter(move |(route, _)| matches(route, &wanted))
    }

    /// The name of the path's `index`-th parameter (counting from 0).
    pub fn param_name(&self, path: &str, index: usize) -> Option<String> {
        self.matching(path).find_map(|(route, _)| {
            route
                .iter()
                .filter_map(|s| match s {
                    Segment::Param(name) => Some(name.clone()),
                    Segment::Literal(_) => None,
                })
                .nth(index)
        })
    }

    /// The methods of the path, comma-separated, if some route matches it.
    pub fn allowed(&self, path: &str) -> Option<String> {
        let mut methods: Vec<&str> = Vec::new();
        for (_, ms) in self.matching(path) {
            methods.extend(ms.iter().map(String::as_str));
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
        assert_eq!(
            t.param_name("/api/v1/executions/abc/cancel", 0).as_deref(),
            Some("id")
        );
        assert_eq!(t.param_name("/api/v1/executions/abc/cancel", 1), None);
        assert_eq!(
            t.template("/api/v1/executions/abc/cancel"),
            Some("/api/v1/executions/{id}/cancel")
        );
        assert_eq!(t.template("/nope"), None);
    }
}
