//! One instance's saved workflows and schedules, kept by id (sorted, so pages are stable).

use std::collections::BTreeMap;
use std::ops::Bound;

use serde_json::{Map, Value};

use crate::validate::workflow::{ScheduleDef, WorkflowDef};

/// Why a catalog change was refused; the route turns it into AMC's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatalogError {
    /// The id is taken.
    Exists,
    /// No such id.
    NotFound,
    /// The workflow a schedule names does not exist.
    NoWorkflow(String),
    /// The workflow is referenced by this schedule.
    InUse(String),
}

/// A stored saved workflow.
#[derive(Debug, Clone)]
struct Workflow {
    sql: String,
    body: Map<String, Value>,
}

/// A stored schedule.
#[derive(Debug, Clone)]
struct Schedule {
    workflow_id: String,
    body: Map<String, Value>,
}

/// Saved workflows and schedules of one instance.
#[derive(Debug, Default)]
pub struct Catalog {
    workflows: BTreeMap<String, Workflow>,
    schedules: BTreeMap<String, Schedule>,
}

/// One page of a listing: the items, and the id the next page starts at.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub items: Vec<Value>,
    pub next: Option<String>,
}

impl Catalog {
    /// Saves a new workflow.
    pub fn create_workflow(&mut self, def: WorkflowDef) -> Result<(), CatalogError> {
        if self.workflows.contains_key(&def.id) {
            return Err(CatalogError::Exists);
        }
        self.workflows.insert(
            def.id,
            Workflow {
                sql: def.sql,
                body: def.body,
            },
        );
        Ok(())
    }

    /// Replaces a saved workflow.
    pub fn update_workflow(&mut self, def: WorkflowDef) -> Result<(), CatalogError> {
        let w = self
            .workflows
            .get_mut(&def.id)
            .ok_or(CatalogError::NotFound)?;
        *w = Workflow {
            sql: def.sql,
            body: def.body,
        };
        Ok(())
    }

    /// Deletes a saved workflow no schedule refers to.
    pub fn delete_workflow(&mut self, id: &str) -> Result<(), CatalogError> {
        if !self.workflows.contains_key(id) {
            return Err(CatalogError::NotFound);
        }
        if let Some((sid, _)) = self.schedules.iter().find(|(_, s)| s.workflow_id == id) {
            return Err(CatalogError::InUse(sid.clone()));
        }
        self.workflows.remove(id);
        Ok(())
    }

    /// A saved workflow as stored.
    pub fn workflow(&self, id: &str) -> Option<Value> {
        self.workflows
            .get(id)
            .map(|w| Value::Object(w.body.clone()))
    }

    /// The SQL of a saved workflow.
    pub fn workflow_sql(&self, id: &str) -> Option<String> {
        self.workflows.get(id).map(|w| w.sql.clone())
    }

    /// Every saved workflow's id and the size of its SQL in bytes, by id.
    pub fn workflow_sizes(&self) -> Vec<(String, usize)> {
        self.workflows
            .iter()
            .map(|(id, w)| (id.clone(), w.sql.len()))
            .collect()
    }

    /// Up to `limit` workflows from id `from` on.
    pub fn workflows(&self, from: Option<&str>, limit: usize) -> Page {
        page(&self.workflows, from, limit, |w| {
            Value::Object(w.body.clone())
        })
    }

    /// Saves a new schedule of an existing workflow.
    pub fn create_schedule(&mut self, def: ScheduleDef) -> Result<(), CatalogError> {
        if self.schedules.contains_key(&def.id) {
            return Err(CatalogError::Exists);
        }
        self.check_workflow(&def.workflow_id)?;
        self.schedules.insert(
            def.id,
            Schedule {
                workflow_id: def.workflow_id,
                body: def.body,
            },
        );
        Ok(())
    }

    /// Replaces a schedule.
    pub fn update_schedule(&mut self, def: ScheduleDef) -> Result<(), CatalogError> {
        if !self.schedules.contains_key(&def.id) {
            return Err(CatalogError::NotFound);
        }
        self.check_workflow(&def.workflow_id)?;
        self.schedules.insert(
            def.id,
            Schedule {
                workflow_id: def.workflow_id,
                body: def.body,
            },
        );
        Ok(())
    }

    /// Deletes a schedule.
    pub fn delete_schedule(&mut self, id: &str) -> Result<(), CatalogError> {
        self.schedules
            .remove(id)
            .map(|_| ())
            .ok_or(CatalogError::NotFound)
    }

    /// A schedule as stored.
    pub fn schedule(&self, id: &str) -> Option<Value> {
        self.schedules
            .get(id)
            .map(|s| Value::Object(s.body.clone()))
    }

    /// Up to `limit` schedules from id `from` on.
    pub fn schedules(&self, from: Option<&str>, limit: usize) -> Page {
        page(&self.schedules, from, limit, |s| {
            Value::Object(s.body.clone())
        })
    }

    fn check_workflow(&self, id: &str) -> Result<(), CatalogError> {
        if self.workflows.contains_key(id) {
            Ok(())
        } else {
            Err(CatalogError::NoWorkflow(id.to_owned()))
        }
    }
}

fn page<T>(
    map: &BTreeMap<String, T>,
    from: Option<&str>,
    limit: usize,
    render: impl Fn(&T) -> Value,
) -> Page {
    let start = from.map_or(Bound::Unbounded, Bound::Included);
    let mut picked: Vec<(&String, &T)> = map
        .range::<str, _>((start, Bound::Unbounded))
        .take(limit.saturating_add(1))
        .collect();
    let next = (picked.len() > limit)
        .then(|| picked.pop().map(|(id, _)| id.clone()))
        .flatten();
    Page {
        items: picked.into_iter().map(|(_, v)| render(v)).collect(),
        next,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::workflow::{parse_schedule, parse_workflow};

    fn wf(id: &str) -> WorkflowDef {
        parse_workflow(
            format!(r#"{{"workflowId":"{id}","sqlQuery":"SELECT 1"}}"#).as_bytes(),
            None,
        )
        .expect("valid")
    }

    #[test]
    fn workflows_and_schedules_keep_their_rules() {
        let mut c = Catalog::default();
        c.create_workflow(wf("a")).expect("a");
        assert_eq!(c.create_workflow(wf("a")), Err(CatalogError::Exists));
        assert_eq!(c.update_workflow(wf("b")), Err(CatalogError::NotFound));
        let s = |w: &str| {
            parse_schedule(
                format!(r#"{{"scheduleId":"s","workflowId":"{w}"}}"#).as_bytes(),
                None,
                chrono::Utc::now(),
            )
            .expect("valid")
        };
        assert_eq!(
            c.create_schedule(s("b")),
            Err(CatalogError::NoWorkflow("b".into()))
        );
        c.create_schedule(s("a")).expect("schedule");
        assert_eq!(c.delete_workflow("a"), Err(CatalogError::InUse("s".into())));
        c.delete_schedule("s").expect("delete schedule");
        c.delete_workflow("a").expect("delete workflow");
        assert_eq!(c.delete_workflow("a"), Err(CatalogError::NotFound));
    }

    #[test]
    fn pages_follow_ids_and_end_without_a_token() {
        let mut c = Catalog::default();
        for id in ["c", "a", "b"] {
            c.create_workflow(wf(id)).expect("create");
        }
        let first = c.workflows(None, 2);
        assert_eq!(first.items.len(), 2);
        assert_eq!(first.items[0]["workflowId"], "a");
        assert_eq!(first.next.as_deref(), Some("c"));
        let last = c.workflows(first.next.as_deref(), 2);
        assert_eq!(last.items.len(), 1);
        assert_eq!(last.next, None);
    }
}
