//! Group commit for new executions: requests that arrive together are written in one
//! transaction (their rows, audit rows and events), so the API's write rate is bounded by
//! Postgres' commits per second times the batch size, not by one commit per request.
//!
//! The workflows of a batch are read with one query too, and each request is rendered
//! against its workflow (an unknown workflow or bad parameters answer that caller alone).
//! Each caller still gets exactly what [`create`] would answer it. Requests with an
//! `Idempotency-Key` whose key already exists, and every request of a batch whose
//! transaction failed, are answered by [`create`] one at a time, so one bad request never
//! fails its neighbours.

use super::create::{CreateError, Created, NewExecution, create, queued_reason};
use super::request::{render_run, request_hash};
use super::row::COLUMNS;
use super::{ExecutionRow, Status, TriggeredBy};
pub use crate::group::BatchLimits;
use crate::group::{Call, Group};
use crate::ids::{InstanceId, UserId, WorkflowId};
use crate::sql::RenderError;
use crate::time_window::TimeWindow;
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, FromQueryResult, Statement,
    TransactionTrait,
};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use tokio::sync::oneshot;
use uuid::Uuid;

/// A request to run a workflow, as a client sent it (the window already parsed).
#[derive(Debug, Clone)]
pub struct RunRequest {
    pub user_id: UserId,
    pub workflow_id: WorkflowId,
    /// The parameters given (merged over the workflow's defaults).
    pub parameters: Map<String, Value>,
    pub window: TimeWindow,
    pub triggered_by: TriggeredBy,
    pub idempotency_key: Option<String>,
}

/// Why a run request was not recorded.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// No such workflow for this user.
    #[error("workflow not found")]
    WorkflowNotFound,
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error(transparent)]
    Create(#[from] CreateError),
}

type Answer = Result<Created, RunError>;
type Pending = Call<RunRequest, Answer>;

/// A request rendered against its workflow, ready to insert under `id`.
struct Ready {
    id: Uuid,
    new: NewExecution,
    reply: oneshot::Sender<Answer>,
}

/// Handle to the group-commit task; cheap to clone. The task ends when every handle is
/// dropped, after answering what it holds.
#[derive(Clone)]
pub struct CreateBatcher {
    group: Group<RunRequest, Answer>,
}

#[derive(Debug, thiserror::Error)]
#[error("the execution writer has stopped")]
struct Stopped;

impl CreateBatcher {
    /// Starts the task (inside tokio).
    pub fn start(db: DatabaseConnection, limits: BatchLimits) -> Self {
        let group = Group::start(limits, move |batch| {
            let db = db.clone();
            async move { write_batch(&db, batch).await }
        });
        Self { group }
    }

    /// Renders the request against its workflow and records the run `queued`, exactly as
    /// [`create`] does, in a shared transaction.
    pub async fn run(&self, request: RunRequest) -> Result<Created, RunError> {
        self.group.call(request).await.unwrap_or_else(|| {
            Err(RunError::Create(CreateError::Db(DbErr::Custom(
                Stopped.to_string(),
            ))))
        })
    }
}

#[derive(Debug, FromQueryResult)]
struct WorkflowOfRun {
    id: Uuid,
    user_id: Uuid,
    instance_id: Uuid,
    sql_query: String,
    parameters: Value,
}

/// The workflows the batch names, by id (one query).
async fn workflows_of(
    db: &DatabaseConnection,
    batch: &[Pending],
) -> Result<HashMap<Uuid, WorkflowOfRun>, DbErr> {
    let ids: Vec<Value> = batch
        .iter()
        .map(|p| json!(p.request.workflow_id.0))
        .collect();
    let rows = WorkflowOfRun::find_by_statement(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT id, user_id, instance_id, sql_query, parameters FROM workflows \
         WHERE id IN (SELECT jsonb_array_elements_text($1::jsonb)::uuid)",
        [Value::Array(ids).into()],
    ))
    .all(db)
    .await?;
    Ok(rows.into_iter().map(|w| (w.id, w)).collect())
}

/// Renders one request against its workflow (another user's workflow is not found).
fn prepare(
    workflows: &HashMap<Uuid, WorkflowOfRun>,
    r: RunRequest,
) -> Result<NewExecution, RunError> {
    let wf = workflows
        .get(&r.workflow_id.0)
        .filter(|w| w.user_id == r.user_id.0)
        .ok_or(RunError::WorkflowNotFound)?;
    let rendered = render_run(&wf.sql_query, &wf.parameters, &r.parameters)?;
    let idempotency = r
        .idempotency_key
        .map(|k| (k, request_hash(wf.id, &r.parameters, &r.window)));
    Ok(NewExecution {
        user_id: r.user_id,
        workflow_id: r.workflow_id,
        instance_id: InstanceId(wf.instance_id),
        sql_query: rendered.sql_query,
        parameters: rendered.parameters,
        window: r.window,
        triggered_by: r.triggered_by,
        idempotency,
    })
}

async fn write_batch(db: &DatabaseConnection, pending: Vec<Pending>) {
    let workflows = match workflows_of(db, &pending).await {
        Ok(w) => w,
        Err(e) => {
            let msg = e.to_string();
            for p in pending {
                p.answer(Err(RunError::Create(CreateError::Db(DbErr::Custom(
                    msg.clone(),
                )))));
            }
            return;
        }
    };
    let mut batch = Vec::with_capacity(pending.len());
    for p in pending {
        let Call { request, reply } = p;
        match prepare(&workflows, request) {
            Ok(new) => batch.push(Ready {
                id: Uuid::now_v7(),
                new,
                reply,
            }),
            Err(e) => {
                let _ = reply.send(Err(e));
            }
        }
    }
    if batch.is_empty() {
        return;
    }
    match insert_batch(db, &batch).await {
        Ok(mut written) => {
            for p in batch {
                match written.remove(&p.id) {
                    Some(row) => {
                        let _ = p.reply.send(Ok(Created::New(row)));
                    }
                    // Its Idempotency-Key was taken: answer as a lone create would.
                    None => answer_alone(db, p).await,
                }
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, size = batch.len(), "batched insert failed; writing the runs one by one");
            for p in batch {
                answer_alone(db, p).await;
            }
        }
    }
}

async fn answer_alone(db: &DatabaseConnection, r: Ready) {
    let _ = r
        .reply
        .send(create(db, &r.new).await.map_err(RunError::from));
}

/// Writes every execution of the batch (skipping taken idempotency keys), their audit
/// rows and their events in one transaction; returns the rows written, by id.
async fn insert_batch(
    db: &DatabaseConnection,
    batch: &[Ready],
) -> Result<HashMap<Uuid, ExecutionRow>, DbErr> {
    let records: Vec<Value> = batch
        .iter()
        .map(|p| {
            let n = &p.new;
            let (key, hash) = match &n.idempotency {
                Some((k, h)) => (Some(k.as_str()), Some(h.as_str())),
                None => (None, None),
            };
            json!({
                "id": p.id,
                "user_id": n.user_id.0,
                "workflow_id": n.workflow_id.0,
                "instance_id": n.instance_id.0,
                "sql_query": n.sql_query,
                "parameters": n.parameters,
                "time_window_start": n.window.start,
                "time_window_end": n.window.end,
                "time_zone": n.window.time_zone.name(),
                "triggered_by": n.triggered_by.as_str(),
                "idempotency_key": key,
                "request_hash": hash,
            })
        })
        .collect();
    let txn = db.begin().await?;
    let rows = ExecutionRow::find_by_statement(Statement::from_sql_and_values(
        DbBackend::Postgres,
        format!(
            "INSERT INTO executions (id, user_id, workflow_id, instance_id, status, sql_query, parameters, \
               time_window_start, time_window_end, time_zone, triggered_by, idempotency_key, request_hash) \
             SELECT id, user_id, workflow_id, instance_id, 'queued', sql_query, parameters, \
               time_window_start, time_window_end, time_zone, triggered_by, idempotency_key, request_hash \
             FROM jsonb_to_recordset($1::jsonb) AS t(id uuid, user_id uuid, workflow_id uuid, instance_id uuid, \
               sql_query text, parameters jsonb, time_window_start timestamp, time_window_end timestamp, \
               time_zone text, triggered_by text, idempotency_key text, request_hash text) \
             ON CONFLICT (user_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING \
             RETURNING {COLUMNS}"
        ),
        [Value::Array(records).into()],
    ))
    .all(&txn)
    .await?;
    if !rows.is_empty() {
        let transitions: Vec<Value> = rows
            .iter()
            .map(|r| json!({"execution_id": r.id, "reason": queued_reason(r)}))
            .collect();
        let events: Vec<Value> = rows
            .iter()
            .map(|r| {
                json!({"id": Uuid::now_v7(), "user_id": r.user_id, "subject_id": r.id, "payload": r.public_json()})
            })
            .collect();
        txn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "INSERT INTO execution_transitions (execution_id, from_status, to_status, reason) \
             SELECT execution_id, NULL, $2, reason \
             FROM jsonb_to_recordset($1::jsonb) AS t(execution_id uuid, reason text)",
            [
                Value::Array(transitions).into(),
                Status::Queued.as_str().into(),
            ],
        ))
        .await?;
        txn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "INSERT INTO events (id, user_id, event_type, subject_id, payload) \
             SELECT id, user_id, 'execution.queued', subject_id, payload \
             FROM jsonb_to_recordset($1::jsonb) AS t(id uuid, user_id uuid, subject_id uuid, payload jsonb)",
            [Value::Array(events).into()],
        ))
        .await?;
    }
    txn.commit().await?;
    Ok(rows.into_iter().map(|r| (r.id, r)).collect())
}
