//! What a batch asks for, and the checks of it that need no database: the list of
//! instances (not empty, at most [`MAX_INSTANCES`], none twice) and each instance's SQL
//! rendered with its parameters, every failure naming the field a client sent
//! (`instances[3].instance_id`, `instances[3].parameters.country`, `parameters.tag`).

use crate::execution::{Rendered, render_run};
use crate::ids::{InstanceId, WorkflowId};
use crate::sql::RenderError;
use crate::time_window::TimeWindow;
use sea_orm::DbErr;
use serde_json::{Map, Value};
use std::collections::HashMap;

/// The most instances one batch runs on.
pub const MAX_INSTANCES: usize = 100;

/// One instance of a batch and the values of its own run.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchInstance {
    pub instance_id: InstanceId,
    /// Over the batch's `parameters` and the workflow's defaults.
    pub parameters: Map<String, Value>,
}

/// A batch as the API checked it (its list and SQL are checked here).
#[derive(Debug, Clone, PartialEq)]
pub struct BatchSpec {
    pub workflow_id: WorkflowId,
    /// `None`: named after the workflow.
    pub name: Option<String>,
    /// `None`: the latest.
    pub version: Option<i32>,
    /// The values common to every run, over the workflow's defaults.
    pub parameters: Map<String, Value>,
    /// `None`: each run gets the default window in its instance's zone.
    pub window: Option<TimeWindow>,
    pub instances: Vec<BatchInstance>,
    /// What the runs' first jobs carry (`telemetry::trace::outgoing`).
    pub trace: Option<String>,
}

/// Why a batch was not written (or changed).
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error("workflow not found")]
    WorkflowNotFound,
    #[error("batch not found")]
    NotFound,
    /// An instance that is not the user's; `field` names it (`instances[3].instance_id`).
    #[error("{field}: instance not found")]
    InstanceNotFound { field: String },
    #[error("the workflow has no version {0}")]
    VersionNotFound(i32),
    /// A bad list of instances; `field` names it.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    /// An instance's SQL does not render; `field` names the value to fix.
    #[error("{field}: {source}")]
    Render {
        field: String,
        #[source]
        source: RenderError,
    },
    /// The batch is not in a state that allows this (the message says why).
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// The field naming instance `i`'s `rest` (`instances[i].rest`).
pub fn instance_field(i: usize, rest: &str) -> String {
    format!("instances[{i}].{rest}")
}

/// Checks the list: at least one instance, at most [`MAX_INSTANCES`], none twice.
pub fn check_instances(instances: &[BatchInstance]) -> Result<(), BatchError> {
    let invalid = |field: String, message: String| BatchError::Invalid { field, message };
    if instances.is_empty() {
        return Err(invalid(
            "instances".into(),
            "must list at least one instance".into(),
        ));
    }
    if instances.len() > MAX_INSTANCES {
        return Err(invalid(
            "instances".into(),
            format!(
                "lists {} instances; a batch runs on at most {MAX_INSTANCES}",
                instances.len()
            ),
        ));
    }
    let mut seen: HashMap<InstanceId, usize> = HashMap::new();
    for (i, inst) in instances.iter().enumerate() {
        if let Some(first) = seen.insert(inst.instance_id, i) {
            return Err(invalid(
                instance_field(i, "instance_id"),
                format!("repeats instances[{first}]: each instance runs once per batch"),
            ));
        }
    }
    Ok(())
}

/// The parameter a render error is about.
fn name_of(e: &RenderError) -> &str {
    match e {
        RenderError::Missing(n)
        | RenderError::Unknown(n)
        | RenderError::InvalidValue { name: n, .. } => n,
    }
}

/// Renders each instance's run: the workflow's `defaults`, the batch's `common` values
/// and the instance's own, in that order of precedence. A value the SQL has no
/// placeholder for, or one that cannot be written, names the field it was sent in; a
/// missing value names the instance's parameters (where it would go).
pub fn render_each(
    sql: &str,
    defaults: &Value,
    common: &Map<String, Value>,
    instances: &[BatchInstance],
) -> Result<Vec<Rendered>, BatchError> {
    if let Some(unknown) = common.keys().find(|k| !crate::sql::is_known_name(sql, k)) {
        return Err(BatchError::Render {
            field: format!("parameters.{unknown}"),
            source: RenderError::Unknown(unknown.clone()),
        });
    }
    instances
        .iter()
        .enumerate()
        .map(|(i, inst)| {
            let mut given = common.clone();
            given.extend(inst.parameters.clone());
            render_run(sql, defaults, &given).map_err(|source| {
                let name = name_of(&source);
                let field = if common.contains_key(name) && !inst.parameters.contains_key(name) {
                    format!("parameters.{name}")
                } else {
                    instance_field(i, &format!("parameters.{name}"))
                };
                BatchError::Render { field, source }
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn inst(params: Value) -> BatchInstance {
        BatchInstance {
            instance_id: InstanceId::new(),
            parameters: params.as_object().cloned().unwrap_or_default(),
        }
    }

    fn field(r: Result<impl std::fmt::Debug, BatchError>) -> String {
        match r.unwrap_err() {
            BatchError::Invalid { field, .. } | BatchError::Render { field, .. } => field,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_list_is_not_empty_not_too_long_and_names_a_repeat() {
        assert_eq!(field(check_instances(&[])), "instances");
        let many: Vec<_> = (0..=MAX_INSTANCES).map(|_| inst(json!({}))).collect();
        assert_eq!(field(check_instances(&many)), "instances");
        assert!(check_instances(&many[..MAX_INSTANCES]).is_ok());
        let mut list: Vec<_> = (0..4).map(|_| inst(json!({}))).collect();
        list[3].instance_id = list[1].instance_id;
        let e = check_instances(&list).unwrap_err();
        assert!(e.to_string().contains("repeats instances[1]"), "{e}");
        assert_eq!(field(check_instances(&list)), "instances[3].instance_id");
    }

    #[test]
    fn instance_values_win_over_common_ones_and_defaults() {
        let sql = "SELECT 1 FROM t WHERE tag = {{tag}} AND c = {{country}} AND n = {{n}}";
        let defaults = json!({"n": 1, "country": "US"});
        let common = json!({"tag": "all", "country": "DE"});
        let list = [inst(json!({})), inst(json!({"country": "FR", "n": 7}))];
        let r = render_each(sql, &defaults, common.as_object().unwrap(), &list).unwrap();
        assert_eq!(
            r[0].sql_query,
            "SELECT 1 FROM t WHERE tag = 'all' AND c = 'DE' AND n = 1"
        );
        assert_eq!(
            r[1].parameters,
            json!({"tag": "all", "country": "FR", "n": 7})
        );
    }

    #[test]
    fn a_bad_value_names_the_field_it_came_in() {
        let sql = "SELECT {{a}}, {{b}}";
        let none = Map::new();
        // Unknown in the common values, in an instance's, and a value missing everywhere.
        let common = json!({"zzz": 1});
        assert_eq!(
            field(render_each(
                sql,
                &json!({"a": 1, "b": 2}),
                common.as_object().unwrap(),
                &[inst(json!({}))]
            )),
            "parameters.zzz"
        );
        let list = [inst(json!({"b": 2})), inst(json!({"b": 2, "yyy": 1}))];
        assert_eq!(
            field(render_each(sql, &json!({"a": 1}), &none, &list)),
            "instances[1].parameters.yyy"
        );
        let list = [inst(json!({"b": 2})), inst(json!({}))];
        assert_eq!(
            field(render_each(sql, &json!({"a": 1}), &none, &list)),
            "instances[1].parameters.b"
        );
        // A common value that cannot be written is the common field's fault.
        let common = json!({"b": {"nested": true}});
        assert_eq!(
            field(render_each(
                sql,
                &json!({"a": 1}),
                common.as_object().unwrap(),
                &[inst(json!({}))]
            )),
            "parameters.b"
        );
    }
}
