//! Saved workflows under `{base}/amc/reporting/{instanceId}/workflows` (AMC guide "Manage a
//! workflow"; amc-api.md §4): create, read, update and delete, and [`AmcClient::save_workflow`],
//! the create-or-update a retry can repeat without making a second workflow.

use super::client::{AmcClient, AmcTarget, json as read_json};
use super::error::{AmcError, ErrorClass};
use crate::ids::AmcWorkflowId;
use crate::telemetry::metrics::AmcOperation;
use reqwest::Method;
use serde_json::{Value, json};

impl AmcError {
    /// Whether AMC refused a create because the id is taken: `Workflow with ID X already
    /// exists.` (the AWS solution's workflow manager matches these words and falls back to
    /// an update; the status, 400 in amc-sim, is not documented, so a 409 counts too).
    pub fn is_already_exists(&self) -> bool {
        self.status == Some(409)
            || (self.status == Some(400) && self.message.contains("already exists"))
    }
}

impl AmcClient {
    /// Saves `sql` under `id` so that executions can run it by `workflowId`, whether or not
    /// an earlier attempt (or another worker) already did: a create, and when AMC answers
    /// that the id exists, a read; the workflow is updated only if its SQL differs. Run
    /// twice, it leaves one workflow with this SQL.
    #[tracing::instrument(name = "amc save_workflow", skip_all, fields(otel.kind = "client", amc.workflow_id = %id), err(level = "debug"))]
    pub async fn save_workflow(
        &self,
        t: &AmcTarget<'_>,
        id: &AmcWorkflowId,
        sql: &str,
    ) -> Result<(), AmcError> {
        match self.create_workflow(t, id, sql).await {
            Err(e) if e.is_already_exists() => {
                if self.workflow_sql(t, id).await?.as_deref() == Some(sql) {
                    Ok(())
                } else {
                    tracing::warn!(amc.workflow_id = %id, "the saved workflow at AMC has other SQL; updating it");
                    self.update_workflow(t, id, sql).await
                }
            }
            other => other,
        }
    }

    /// `POST …/workflows`: a new saved workflow (AMC answers 200 `{}`).
    pub async fn create_workflow(
        &self,
        t: &AmcTarget<'_>,
        id: &AmcWorkflowId,
        sql: &str,
    ) -> Result<(), AmcError> {
        self.send_definition(t, Method::POST, id, sql).await
    }

    /// `PUT …/workflows/{id}`: replaces a saved workflow's SQL.
    pub async fn update_workflow(
        &self,
        t: &AmcTarget<'_>,
        id: &AmcWorkflowId,
        sql: &str,
    ) -> Result<(), AmcError> {
        self.send_definition(t, Method::PUT, id, sql).await
    }

    /// Sends a workflow's definition: `POST …/workflows` or `PUT …/workflows/{id}`.
    async fn send_definition(
        &self,
        t: &AmcTarget<'_>,
        method: Method,
        id: &AmcWorkflowId,
        sql: &str,
    ) -> Result<(), AmcError> {
        let (segments, op): (&[&str], _) = if method == Method::POST {
            (&["workflows"], AmcOperation::CreateWorkflow)
        } else {
            (&["workflows", id.as_str()], AmcOperation::UpdateWorkflow)
        };
        let body = json!({ "workflowId": id, "sqlQuery": sql });
        let req = self.request(method, t, segments)?.json(&body);
        self.send(op, req).await.map(|_| ())
    }

    /// `GET …/workflows/{id}`: the saved workflow's SQL (`None`: it has none), read from
    /// `{"workflow":{…}}` (the spec's model) or a flat object.
    pub async fn workflow_sql(
        &self,
        t: &AmcTarget<'_>,
        id: &AmcWorkflowId,
    ) -> Result<Option<String>, AmcError> {
        let req = self.request(Method::GET, t, &["workflows", id.as_str()])?;
        let v = read_json(self.send(AmcOperation::GetWorkflow, req).await?).await?;
        let w = v.get("workflow").filter(|w| w.is_object()).unwrap_or(&v);
        Ok(w.get("sqlQuery").and_then(Value::as_str).map(str::to_owned))
    }

    /// `DELETE …/workflows/{id}`. A workflow AMC does not have (`Workflow with ID X does not
    /// exist.`) counts as deleted, so a repeated delete succeeds.
    pub async fn delete_workflow(
        &self,
        t: &AmcTarget<'_>,
        id: &AmcWorkflowId,
    ) -> Result<(), AmcError> {
        let req = self.request(Method::DELETE, t, &["workflows", id.as_str()])?;
        match self.send(AmcOperation::DeleteWorkflow, req).await {
            Ok(_) => Ok(()),
            Err(e) if e.class == ErrorClass::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The duplicate-id answer amc-sim gives (the words the AWS solution matches), and a
    /// 409, mean "exists"; a compile error does not.
    #[test]
    fn already_exists_is_told_from_other_refusals() {
        let exists = AmcError::from_response(
            400,
            None,
            r#"{"code":"400","details":"Workflow with ID amp_1 already exists."}"#,
        );
        assert!(exists.is_already_exists());
        assert!(AmcError::from_response(409, None, "{}").is_already_exists());
        let compile = AmcError::from_response(
            400,
            None,
            r#"{"code":"400","details":"Was unable to compile workflow amp_1 because it was found to be invalid"}"#,
        );
        assert!(!compile.is_already_exists());
        assert!(!AmcError::from_response(500, None, "already exists").is_already_exists());
    }
}
