//! The `batches` table: a user's batches, created with all their runs in one transaction,
//! read, listed and cancelled; every query is scoped to its owner.

use super::row::{BatchRow, BatchStatus, COLUMNS, counts_lateral};
use super::spec::{BatchError, BatchSpec, check_instances, instance_field, render_each};
use crate::execution::{
    CancelOutcome, ExecutionRow, ExecutionStatus, Links, NewExecution, TriggeredBy, insert_batch,
    now_micros, queued_row_of, records_of, request_cancel_because,
};
use crate::ids::{BatchId, ExecutionId, InstanceId, UserId, WorkflowId};
use crate::repo::{page_of_user, stmt};
use crate::time_window::TimeWindow;
use crate::workflow::default_window;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, FromQueryResult, TransactionTrait};
use serde_json::{Value, json};
use std::collections::HashMap;

/// A batch just created, and its runs (queued; their submit jobs go after the commit).
#[derive(Debug)]
pub struct Created {
    pub batch: BatchRow,
    pub runs: Vec<ExecutionId>,
}

/// A batch after a change, and its runs whose cancellation a worker carries to AMC
/// (their cancel jobs go after the commit).
#[derive(Debug)]
pub struct Changed {
    pub batch: BatchRow,
    pub cancel_requested: Vec<ExecutionId>,
}

/// The workflow version a batch runs.
#[derive(Debug, FromQueryResult)]
struct Workflow {
    name: String,
    sql_query: String,
    parameters: Value,
    version: i32,
}

/// The user's workflow at `version` (`None`: the latest).
async fn workflow_of<C: ConnectionTrait>(
    conn: &C,
    user: UserId,
    id: WorkflowId,
    version: Option<i32>,
) -> Result<Workflow, BatchError> {
    let wf = Workflow::find_by_statement(stmt(
        "SELECT name, sql_query, parameters, version FROM workflows \
         WHERE id = $1 AND user_id = $2 AND deleted_at IS NULL",
        [id.into(), user.into()],
    ))
    .one(conn)
    .await?
    .ok_or(BatchError::WorkflowNotFound)?;
    let Some(v) = version.filter(|v| *v != wf.version) else {
        return Ok(wf);
    };
    let old = conn
        .query_one_raw(stmt(
            "SELECT sql_query, parameters FROM workflow_versions WHERE workflow_id = $1 AND version = $2",
            [id.into(), v.into()],
        ))
        .await?
        .ok_or(BatchError::VersionNotFound(v))?;
    Ok(Workflow {
        sql_query: old.try_get("", "sql_query")?,
        parameters: old.try_get("", "parameters")?,
        version: v,
        ..wf
    })
}

/// An instance of the user's, as a batch run needs it.
#[derive(Debug, FromQueryResult)]
struct Instance {
    id: InstanceId,
    time_zone: String,
}

/// The user's instances among `spec`'s, by id; the first one that is not the user's is
/// named.
async fn instances_of<C: ConnectionTrait>(
    conn: &C,
    user: UserId,
    spec: &BatchSpec,
) -> Result<HashMap<InstanceId, Instance>, BatchError> {
    let ids: Vec<Value> = spec
        .instances
        .iter()
        .map(|i| json!(i.instance_id))
        .collect();
    let found: HashMap<InstanceId, Instance> = Instance::find_by_statement(stmt(
        "SELECT id, time_zone FROM amc_instances WHERE user_id = $1 \
           AND id IN (SELECT jsonb_array_elements_text($2::jsonb)::uuid)",
        [user.into(), Value::Array(ids).into()],
    ))
    .all(conn)
    .await?
    .into_iter()
    .map(|i| (i.id, i))
    .collect();
    if let Some(i) = spec
        .instances
        .iter()
        .position(|i| !found.contains_key(&i.instance_id))
    {
        return Err(BatchError::InstanceNotFound {
            field: instance_field(i, "instance_id"),
        });
    }
    Ok(found)
}

/// Creates a batch of the user's workflow over the user's instances: the batch and one
/// queued run per instance (with their audit rows and events) in one transaction. The
/// runs then go through the normal admission, each under its instance's caps.
pub async fn create(
    db: &DatabaseConnection,
    user: UserId,
    spec: &BatchSpec,
) -> Result<Created, BatchError> {
    check_instances(&spec.instances)?;
    let wf = workflow_of(db, user, spec.workflow_id, spec.version).await?;
    let instances = instances_of(db, user, spec).await?;
    let rendered = render_each(
        &wf.sql_query,
        &wf.parameters,
        &spec.parameters,
        &spec.instances,
    )?;
    let id = BatchId::new();
    let now = now_micros();
    let mut rows: Vec<ExecutionRow> = Vec::with_capacity(rendered.len());
    for (inst, r) in spec.instances.iter().zip(rendered) {
        let instance = &instances[&inst.instance_id];
        let tz: Tz = instance.time_zone.parse().unwrap_or(chrono_tz::UTC);
        let new = NewExecution {
            user_id: user,
            workflow_id: spec.workflow_id,
            workflow_version: wf.version,
            instance_id: instance.id,
            sql_query: r.sql_query,
            parameters: r.parameters,
            window: spec
                .window
                .clone()
                .unwrap_or_else(|| default_window(now, tz)),
            triggered_by: TriggeredBy::Batch,
            idempotency: None,
            links: Links {
                batch_id: Some(id),
                ..Links::default()
            },
            trace: spec.trace.clone(),
        };
        rows.push(queued_row_of(ExecutionId::new(), &new, now));
    }
    let name = spec
        .name
        .clone()
        .unwrap_or_else(|| format!("{} on {} instances", wf.name, rows.len()));
    let new = NewBatch {
        id,
        user,
        name,
        at: now,
        runs: rows.len(),
    };
    let txn = db.begin().await?;
    insert_row(&txn, spec, &wf, &new).await?;
    insert_batch(&txn, records_of(&rows), now).await?;
    let batch = find_in(&txn, user, id).await?.ok_or(BatchError::NotFound)?;
    txn.commit().await?;
    Ok(Created {
        batch,
        runs: rows.iter().map(|r| r.id).collect(),
    })
}

/// The batch row's own values (the rest comes from the spec and the workflow).
struct NewBatch {
    id: BatchId,
    user: UserId,
    name: String,
    /// Its `created_at`, the same as its runs'.
    at: DateTime<Utc>,
    runs: usize,
}

async fn insert_row<C: ConnectionTrait>(
    txn: &C,
    spec: &BatchSpec,
    wf: &Workflow,
    n: &NewBatch,
) -> Result<(), DbErr> {
    let window: Option<&TimeWindow> = spec.window.as_ref();
    txn.execute_raw(stmt(
        "INSERT INTO batches (id, user_id, workflow_id, workflow_version, name, parameters, \
           time_window_start, time_window_end, time_zone, status, run_count, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)",
        [
            n.id.into(),
            n.user.into(),
            spec.workflow_id.into(),
            wf.version.into(),
            n.name.clone().into(),
            Value::Object(spec.parameters.clone()).into(),
            window.map(|w| w.start).into(),
            window.map(|w| w.end).into(),
            window.map(|w| w.time_zone.name().to_owned()).into(),
            BatchStatus::Running.into(),
            (n.runs as i32).into(),
            n.at.into(),
        ],
    ))
    .await?;
    Ok(())
}

pub(crate) async fn find_in<C: ConnectionTrait>(
    conn: &C,
    user: UserId,
    id: BatchId,
) -> Result<Option<BatchRow>, DbErr> {
    let sql = format!(
        "SELECT {COLUMNS} FROM batches b {} WHERE b.id = $1 AND b.user_id = $2",
        counts_lateral()
    );
    BatchRow::find_by_statement(stmt(&sql, [id.into(), user.into()]))
        .one(conn)
        .await
}

/// The user's batch (another user's reads as missing).
pub async fn get(
    db: &DatabaseConnection,
    user: UserId,
    id: BatchId,
) -> Result<Option<BatchRow>, DbErr> {
    find_in(db, user, id).await
}

/// A page of the user's batches, newest first, after `after` (a `(created_at, id)`).
pub async fn list(
    db: &DatabaseConnection,
    user: UserId,
    after: Option<(DateTime<Utc>, BatchId)>,
    limit: u64,
) -> Result<Vec<BatchRow>, DbErr> {
    // The counts are read for the page's rows only (the limit sits above the lateral join
    // of an index scan in order).
    let from = format!("batches b {}", counts_lateral());
    let after = after.map(|(at, id)| (at, id.0));
    BatchRow::find_by_statement(page_of_user(COLUMNS, &from, user, after, limit))
        .all(db)
        .await
}

/// Cancels a running batch: it is marked `cancelled` at once, then every run still going
/// is cancelled through the runs' own cancel (queued ones at once, those at AMC by a
/// worker). It ends, with its event, when its last run has ended.
pub async fn cancel(
    db: &DatabaseConnection,
    user: UserId,
    id: BatchId,
) -> Result<Changed, BatchError> {
    let txn = db.begin().await?;
    let status: BatchStatus = txn
        .query_one_raw(stmt(
            "SELECT status FROM batches WHERE id = $1 AND user_id = $2 FOR NO KEY UPDATE",
            [id.into(), user.into()],
        ))
        .await?
        .ok_or(BatchError::NotFound)?
        .try_get("", "status")?;
    if status != BatchStatus::Running {
        return Err(BatchError::Conflict(format!(
            "the batch is already {status}"
        )));
    }
    txn.execute_raw(stmt(
        "UPDATE batches SET status = $2, updated_at = now() WHERE id = $1",
        [id.into(), BatchStatus::Cancelled.into()],
    ))
    .await?;
    let going: Vec<ExecutionId> = txn
        .query_all_raw(stmt(
            &format!(
                "SELECT id FROM executions WHERE batch_id = $1 AND status NOT IN {}",
                ExecutionStatus::ENDED_SQL
            ),
            [id.into()],
        ))
        .await?
        .iter()
        .map(|r| r.try_get("", "id"))
        .collect::<Result<_, _>>()?;
    // Committed before the runs are cancelled: each run's end takes the batch row's lock
    // after its own row's, as a worker ending a run does.
    txn.commit().await?;
    let mut cancel_requested = Vec::new();
    for run in going {
        let reason = "cancelled with its batch";
        if let CancelOutcome::Requested(row) = request_cancel_because(db, user, run, reason).await?
        {
            cancel_requested.push(row.id);
        }
    }
    let batch = find_in(db, user, id).await?.ok_or(BatchError::NotFound)?;
    Ok(Changed {
        batch,
        cancel_requested,
    })
}
