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
use super::{ExecutionRow, Status, TriggeredBy};
pub use crate::group::BatchLimits;
use crate::group::{Call, Group};
use crate::ids::{EventId, ExecutionId, InstanceId, UserId, WorkflowId};
use crate::sql::RenderError;
use crate::time_window::TimeWindow;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, FromQueryResult, Statement};
use serde_json::{Map, Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tokio::sync::oneshot;

/// A request to run a workflow, as a client sent it (the window already parsed).
#[derive(Debug, Clone)]
pub struct RunRequest {
    pub user_id: UserId,
    pub workflow_id: WorkflowId,
    /// The version to run (`None`: the latest).
    pub version: Option<i32>,
    /// The parameters given (merged over the workflow's defaults).
    pub parameters: Map<String, Value>,
    pub window: TimeWindow,
    pub triggered_by: TriggeredBy,
    pub idempotency_key: Option<String>,
    /// What its first job carries (`telemetry::trace::outgoing` of the request).
    pub trace: Option<String>,
}

/// Why a run request was not recorded.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// No such workflow for this user.
    #[error("workflow not found")]
    WorkflowNotFound,
    /// The workflow has no such version.
    #[error("the workflow has no version {0}")]
    VersionNotFound(i32),
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error(transparent)]
    Create(#[from] CreateError),
    /// The batch's workflows could not be read (every request of the batch gets it).
    #[error("reading the workflows of a batch")]
    Batch(#[source] Arc<DbErr>),
    /// The group-commit task has stopped (the process is shutting down).
    #[error("the execution writer has stopped")]
    Stopped,
}

type Answer = Result<Created, RunError>;
type Pending = Call<RunRequest, Answer>;

/// A request rendered against its workflow, ready to insert under `id`.
struct Ready {
    id: ExecutionId,
    new: NewExecution,
    reply: oneshot::Sender<Answer>,
}

/// What runs after a batch commits, with the runs it wrote, before their callers are
/// answered: the API enqueues their submit jobs here, all with one Redis round trip.
pub type AfterCommit =
    Arc<dyn Fn(Vec<(ExecutionId, Option<String>)>) -> BoxFuture<'static, ()> + Send + Sync>;

/// The limits the API runs its batches with: one batch at a time. Concurrent batches of
/// runs of the same workflow lock the same workflow and instance rows (their foreign keys),
/// which makes Postgres share the locks (multixacts) and spend more per row than the
/// overlap gains; measured in BENCHMARKS.md (W5). The slot is given back at commit, so
/// enqueueing and answering overlap the next batch.
pub const CREATE_LIMITS: BatchLimits = BatchLimits {
    max_batch: 256,
    max_in_flight: 1,
};

/// Handle to the group-commit task; cheap to clone. The task ends when every handle is
/// dropped, after answering what it holds.
#[derive(Clone)]
pub struct CreateBatcher {
    group: Group<RunRequest, Answer>,
}

impl CreateBatcher {
    /// Starts the task (inside tokio). `after_commit` is given the new runs of each batch
    /// (not those answered from an earlier `Idempotency-Key`) once they are committed.
    pub fn start(
        db: DatabaseConnection,
        limits: BatchLimits,
        after_commit: Option<AfterCommit>,
    ) -> Self {
        let group = Group::start(limits, move |batch| {
            let db = db.clone();
            let after_commit = after_commit.clone();
            async move { write_batch(&db, after_commit.as_ref(), batch).await }
        });
        Self { group }
    }

    /// Renders the request against its workflow and records the run `queued`, exactly as
    /// [`create`] does, in a shared transaction.
    ///
    /// The run's ids go on the caller's span (the request's: its log lines name them) rather
    /// than on a span of their own, which would double what tracing costs a create.
    pub async fn run(&self, request: RunRequest) -> Result<Created, RunError> {
        let span = tracing::Span::current();
        span.record("workflow.id", tracing::field::display(request.workflow_id));
        let created = self
            .group
            .call(request)
            .await
            .unwrap_or(Err(RunError::Stopped))?;
        span.record("execution.id", tracing::field::display(created.row().id));
        Ok(created)
    }
}

#[derive(Debug, FromQueryResult)]
struct WorkflowOfRun {
    id: WorkflowId,
    user_id: UserId,
    instance_id: InstanceId,
    sql_query: String,
    parameters: Value,
    version: i32,
    /// Postgres' clock when the batch was read: the batch's `created_at`.
    read_at: DateTime<Utc>,
}

/// The workflows the batch names, by id (one query).
async fn workflows_of(
    db: &DatabaseConnection,
    batch: &[Pending],
) -> Result<HashMap<WorkflowId, WorkflowOfRun>, DbErr> {
    let ids: Vec<Value> = batch
        .iter()
        .map(|p| json!(p.request.workflow_id.0))
        .collect();
    let rows = WorkflowOfRun::find_by_statement(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT id, user_id, instance_id, sql_query, parameters, version, now() AS read_at FROM workflows \
         WHERE id IN (SELECT jsonb_array_elements_text($1::jsonb)::uuid) AND deleted_at IS NULL",
        [Value::Array(ids).into()],
    ))
    .all(db)
    .await?;
    Ok(rows.into_iter().map(|w| (w.id, w)).collect())
}

/// An earlier version's SQL and defaults, by (workflow, version).
type Versions = HashMap<(WorkflowId, i32), (String, Value)>;

/// The earlier versions the batch names (those that are not their workflow's latest),
/// read with one query, and only when some request names one.
async fn versions_of(
    db: &DatabaseConnection,
    batch: &[Pending],
    workflows: &HashMap<WorkflowId, WorkflowOfRun>,
) -> Result<Versions, DbErr> {
    let wanted: Vec<Value> = batch
        .iter()
        .filter_map(|p| {
            let v = p.request.version?;
            let wf = workflows.get(&p.request.workflow_id)?;
            (wf.version != v).then(|| json!([wf.id, v]))
        })
        .collect();
    if wanted.is_empty() {
        return Ok(Versions::new());
    }
    let rows = crate::workflow::VersionRow::find_by_statement(Statement::from_sql_and_values(
        DbBackend::Postgres,
        format!(
            "SELECT {} FROM workflow_versions WHERE (workflow_id, version) IN \
             (SELECT (e->>0)::uuid, (e->>1)::int FROM jsonb_array_elements($1::jsonb) e)",
            crate::workflow::VERSION_COLUMNS
        ),
        [Value::Array(wanted).into()],
    ))
    .all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|v| ((v.workflow_id, v.version), (v.sql_query, v.parameters)))
        .collect())
}

/// Renders one request against its workflow (another user's workflow is not found).
fn prepare(
    workflows: &HashMap<WorkflowId, WorkflowOfRun>,
    versions: &Versions,
    r: RunRequest,
) -> Result<NewExecution, RunError> {
    let wf = workflows
        .get(&r.workflow_id)
        .filter(|w| w.user_id == r.user_id)
        .ok_or(RunError::WorkflowNotFound)?;
    let version = r.version.unwrap_or(wf.version);
    let (sql, defaults) = if version == wf.version {
        (&wf.sql_query, &wf.parameters)
    } else {
        let (s, p) = versions
            .get(&(wf.id, version))
            .ok_or(RunError::VersionNotFound(version))?;
        (s, p)
    };
    let rendered = render_run(sql, defaults, &r.parameters)?;
    let idempotency = r
        .idempotency_key
        .map(|k| (k, request_hash(wf.id, r.version, &r.parameters, &r.window)));
    Ok(NewExecution {
        user_id: r.user_id,
        workflow_id: r.workflow_id,
        workflow_version: version,
        instance_id: wf.instance_id,
        sql_query: rendered.sql_query,
        parameters: rendered.parameters,
        window: r.window,
        triggered_by: r.triggered_by,
        idempotency,
        links: Default::default(),
        trace: r.trace,
    })
}

async fn write_batch(
    db: &DatabaseConnection,
    after_commit: Option<&AfterCommit>,
    pending: Vec<Pending>,
) {
    let workflows = match workflows_of(db, &pending).await {
        Ok(w) => w,
        Err(e) => {
            let e = Arc::new(e);
            for p in pending {
                p.answer(Err(RunError::Batch(e.clone())));
            }
            return;
        }
    };
    let versions = match versions_of(db, &pending, &workflows).await {
        Ok(v) => v,
        Err(e) => {
            let e = Arc::new(e);
            for p in pending {
                p.answer(Err(RunError::Batch(e.clone())));
            }
            return;
        }
    };
    let mut batch = Vec::with_capacity(pending.len());
    for p in pending {
        let Call { request, reply } = p;
        match prepare(&workflows, &versions, request) {
            Ok(new) => batch.push(Ready {
                id: ExecutionId::new(),
                new,
                reply,
            }),
            Err(e) => {
                let _ = reply.send(Err(e));
            }
        }
    }
    // Every request left names a workflow that was read, so there is a time.
    let Some(at) = workflows.values().map(|w| w.read_at).next() else {
        return;
    };
    if batch.is_empty() {
        return;
    }
    let rows: Vec<ExecutionRow> = batch.iter().map(|r| queued_row(r, at)).collect();
    match insert_batch(db, records_of(&rows), at).await {
        // The batch's slot is given back at once: enqueueing and answering overlap the
        // next batch's statements.
        Ok(written) => {
            let (db, after_commit) = (db.clone(), after_commit.cloned());
            tokio::spawn(async move {
                if let Some(hook) = &after_commit {
                    let ids = batch
                        .iter()
                        .filter(|r| written.contains(&r.id))
                        .map(|r| (r.id, r.new.trace.clone()))
                        .collect::<Vec<_>>();
                    if !ids.is_empty() {
                        hook(ids).await;
                    }
                }
                for (p, row) in batch.into_iter().zip(rows) {
                    if written.contains(&p.id) {
                        let _ = p.reply.send(Ok(Created::New(row)));
                    } else {
                        // Its Idempotency-Key was taken: answer as a lone create would.
                        answer_alone(&db, after_commit.as_ref(), p).await;
                    }
                }
            });
        }
        Err(e) => {
            tracing::warn!(error = %e, size = batch.len(), "batched insert failed; writing the runs one by one");
            for p in batch {
                answer_alone(db, after_commit, p).await;
            }
        }
    }
}

async fn answer_alone(db: &DatabaseConnection, after_commit: Option<&AfterCommit>, r: Ready) {
    let created = create(db, &r.new).await.map_err(RunError::from);
    if let (Ok(Created::New(row)), Some(hook)) = (&created, after_commit) {
        hook(vec![(row.id, r.new.trace.clone())]).await;
    }
    let _ = r.reply.send(created);
}

/// The row a request is written as: `queued`, nothing done yet, created at `at`.
fn queued_row(r: &Ready, at: DateTime<Utc>) -> ExecutionRow {
    queued_row_of(r.id, &r.new, at)
}

/// The row a new run is written as: `queued`, nothing done yet, created at `at`.
pub(crate) fn queued_row_of(id: ExecutionId, n: &NewExecution, at: DateTime<Utc>) -> ExecutionRow {
    let (idempotency_key, request_hash) = match &n.idempotency {
        Some((k, h)) => (Some(k.clone()), Some(h.clone())),
        None => (None, None),
    };
    ExecutionRow {
        id,
        user_id: n.user_id,
        workflow_id: n.workflow_id,
        workflow_version: Some(n.workflow_version),
        instance_id: n.instance_id,
        status: Status::Queued,
        sql_query: n.sql_query.clone(),
        parameters: n.parameters.clone(),
        time_window_start: n.window.start,
        time_window_end: n.window.end,
        time_zone: n.window.time_zone.name().to_string(),
        amc_execution_id: None,
        attempt: 0,
        next_check_at: None,
        submit_started_at: None,
        cancel_requested_at: None,
        error_code: None,
        error_message: None,
        result_location: None,
        result_columns: None,
        row_count: None,
        triggered_by: n.triggered_by,
        schedule_id: n.links.schedule_id,
        scheduled_for: n.links.scheduled_for,
        collection_id: n.links.collection_id,
        collection_window: n.links.collection_window,
        idempotency_key,
        request_hash,
        created_at: at,
        updated_at: at,
        submitting_at: None,
        running_at: None,
        fetching_at: None,
        completed_at: None,
        trace_context: n
            .trace
            .as_deref()
            .map(|t| crate::telemetry::trace::root_of(t).to_owned()),
        retry_of: n.links.retry_of,
        results_expired_at: None,
        amc_workflow_id: None,
        batch_id: n.links.batch_id,
        waiting_reason: None,
        quota_wait_until: None,
    }
}

#[derive(Debug, FromQueryResult)]
struct Written {
    id: ExecutionId,
}

/// The batch as `insert_batch` takes it: one JSON record per run, with its audit reason,
/// its event id and its event payload.
pub(crate) fn records_of(rows: &[ExecutionRow]) -> Value {
    let records: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "user_id": r.user_id,
                "workflow_id": r.workflow_id,
                "workflow_version": r.workflow_version,
                "instance_id": r.instance_id,
                "sql_query": r.sql_query,
                "parameters": r.parameters,
                "time_window_start": r.time_window_start,
                "time_window_end": r.time_window_end,
                "time_zone": r.time_zone,
                "triggered_by": r.triggered_by,
                "schedule_id": r.schedule_id,
                "scheduled_for": r.scheduled_for,
                "collection_id": r.collection_id,
                "batch_id": r.batch_id,
                "collection_window": r.collection_window,
                "next_check_at": r.next_check_at,
                "idempotency_key": r.idempotency_key,
                "request_hash": r.request_hash,
                "trace_context": r.trace_context,
                "reason": queued_reason(r),
                "event_id": EventId::new(),
                "payload": r.public_json(),
            })
        })
        .collect();
    Value::Array(records)
}

/// Writes every run of the batch (skipping taken idempotency keys) with its audit row and
/// its `execution.queued` event, all created at `at`, in one statement (so one round trip
/// and one implicit transaction); returns the ids written.
pub(crate) async fn insert_batch<C: ConnectionTrait>(
    db: &C,
    records: Value,
    at: DateTime<Utc>,
) -> Result<HashSet<ExecutionId>, DbErr> {
    // Data-modifying CTEs: the audit rows and events join the executions actually inserted
    // (a taken Idempotency-Key inserts nothing); foreign keys are checked at the end of the
    // statement, when the executions exist.
    let written = Written::find_by_statement(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "WITH t AS MATERIALIZED (SELECT * FROM jsonb_to_recordset($1::jsonb) AS t(id uuid, user_id uuid, \
               workflow_id uuid, instance_id uuid, sql_query text, parameters jsonb, \
               time_window_start timestamp, time_window_end timestamp, time_zone text, triggered_by text, \
               schedule_id uuid, scheduled_for timestamptz, collection_id uuid, collection_window integer, batch_id uuid, next_check_at timestamptz, \
               idempotency_key text, request_hash text, trace_context text, workflow_version integer, reason text, event_id uuid, \
               payload jsonb)), \
         ins AS (INSERT INTO executions (id, user_id, workflow_id, instance_id, status, sql_query, parameters, \
               time_window_start, time_window_end, time_zone, triggered_by, schedule_id, scheduled_for, \
               collection_id, collection_window, batch_id, next_check_at, idempotency_key, request_hash, trace_context, workflow_version, created_at, updated_at) \
             SELECT id, user_id, workflow_id, instance_id, $3, sql_query, parameters, \
               time_window_start, time_window_end, time_zone, triggered_by, schedule_id, scheduled_for, \
               collection_id, collection_window, batch_id, next_check_at, idempotency_key, request_hash, trace_context, workflow_version, $2, $2 \
             FROM t \
             ON CONFLICT DO NOTHING \
             RETURNING id), \
         audit AS (INSERT INTO execution_transitions (execution_id, from_status, to_status, reason, created_at) \
             SELECT t.id, NULL, $3, t.reason, $2 FROM t JOIN ins USING (id)), \
         ev AS (INSERT INTO events (id, user_id, event_type, subject_id, payload, created_at) \
             SELECT t.event_id, t.user_id, $4, t.id, t.payload, $2 FROM t JOIN ins USING (id)) \
         SELECT id FROM ins",
        [
            records.into(),
            at.into(),
            Status::Queued.into(),
            crate::event::EventType::ExecutionQueued.into(),
        ],
    ))
    .all(db)
    .await?;
    Ok(written.into_iter().map(|w| w.id).collect())
}
