//! Checking a run before recording it: the parameters against a version's placeholders,
//! the SQL rendered exactly as a run would send it, and the window it would cover.

use super::{default_window, get_version, instance_zone};
use crate::execution::render_run;
use crate::ids::{UserId, WorkflowId};
use crate::repo::RepoError;
use crate::repo::workflows::get_workflow;
use crate::sql::RenderError;
use crate::time_window::TimeWindow;
use chrono::Utc;
use sea_orm::{ConnectionTrait, DbErr};
use serde_json::{Map, Value};

/// What a run with these inputs would send AMC.
#[derive(Debug, Clone)]
pub struct Validated {
    pub version: i32,
    pub sql_query: String,
    pub parameters: Value,
    pub time_window: TimeWindow,
    /// No window was given: the default one is shown.
    pub time_window_defaulted: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ValidateError {
    #[error("workflow not found")]
    NotFound,
    #[error("the workflow has no version {0}")]
    VersionNotFound(i32),
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error(transparent)]
    Db(DbErr),
    /// The database refused a read in a way a read never should (a conflict, a check).
    #[error("reading the workflow failed")]
    Repo(#[source] RepoError),
}

impl From<RepoError> for ValidateError {
    fn from(e: RepoError) -> Self {
        match e {
            RepoError::NotFound => ValidateError::NotFound,
            RepoError::Db(e) => ValidateError::Db(e),
            other => ValidateError::Repo(other),
        }
    }
}

/// The first default parameter that is not a placeholder of `sql`, if any.
pub fn check_defaults<'a>(sql: &str, parameters: &'a Map<String, Value>) -> Option<&'a str> {
    parameters
        .keys()
        .find(|k| !crate::sql::is_known_name(sql, k))
        .map(String::as_str)
}

/// A run's inputs, as a client sends them.
#[derive(Debug, Clone, Default)]
pub struct RunInputs {
    /// The version to run (`None`: the latest).
    pub version: Option<i32>,
    /// Parameters given, over the version's defaults.
    pub parameters: Map<String, Value>,
    /// `None`: the default window.
    pub window: Option<TimeWindow>,
}

/// Renders a run of one of the user's workflows with `inputs`, without recording
/// anything.
pub async fn validate(
    db: &impl ConnectionTrait,
    user: UserId,
    id: WorkflowId,
    inputs: RunInputs,
) -> Result<Validated, ValidateError> {
    let RunInputs {
        version,
        parameters: given,
        window,
    } = inputs;
    let wf = get_workflow(db, user, id).await?;
    let (version, sql, defaults) = match version {
        Some(v) if v != wf.version => {
            let row = get_version(db, user, id, v).await.map_err(|e| match e {
                RepoError::NotFound => ValidateError::VersionNotFound(v),
                other => other.into(),
            })?;
            (v, row.sql_query, row.parameters)
        }
        _ => (wf.version, wf.sql_query, wf.parameters),
    };
    let rendered = render_run(&sql, &defaults, &given)?;
    let (time_window, time_window_defaulted) = match window {
        Some(w) => (w, false),
        None => (
            default_window(Utc::now(), instance_zone(db, user, id).await?),
            true,
        ),
    };
    Ok(Validated {
        version,
        sql_query: rendered.sql_query,
        parameters: rendered.parameters,
        time_window,
        time_window_defaulted,
    })
}
