//! What moves a collection forward, always inside the transaction of the change that
//! causes it (a window's run ending, the collection created, resumed or reopened), under
//! the collection row's lock: the window's outcome (a failed attempt goes back to pending
//! while attempts are left), the next windows' runs (oldest first, up to
//! `max_concurrency` windows active), and the collection's end with its event.

use super::row::{CollectionStatus, WindowStatus};
use crate::event::{EventType, NewEvent};
use crate::execution::{
    ExecutionRow, ExecutionStatus, Links, NewExecution, TriggeredBy, insert_batch, queued_row_of,
    records_of, render_run,
};
use crate::ids::{CollectionId, ExecutionId, InstanceId, UserId, WorkflowId};
use crate::repo::stmt;
use crate::schedule::store::window_params;
use crate::time_window::TimeWindow;
use chrono::{DateTime, NaiveDateTime, Utc};
use chrono_tz::Tz;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, FromQueryResult, TransactionTrait};
use serde_json::{Value, json};

/// What an advance did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Advanced {
    /// Runs it created (queued; they go through the normal admission).
    pub started: Vec<ExecutionId>,
    /// The instance of those runs.
    pub instance: Option<InstanceId>,
    /// The status the collection ended with, if it ended.
    pub ended: Option<CollectionStatus>,
}

#[derive(Debug, FromQueryResult)]
struct Locked {
    user_id: UserId,
    workflow_id: WorkflowId,
    instance_id: InstanceId,
    status: CollectionStatus,
    time_zone: String,
    parameters: Value,
    sql_query: String,
    workflow_version: Option<i32>,
    max_concurrency: i32,
    max_attempts: i32,
    completed_at: Option<DateTime<Utc>>,
    active: i64,
    pending: i64,
    failed: i64,
}

async fn lock<C: ConnectionTrait>(txn: &C, id: CollectionId) -> Result<Option<Locked>, DbErr> {
    let sql = format!(
        "SELECT c.user_id, c.workflow_id, c.instance_id, c.status, c.time_zone, c.parameters, c.sql_query, c.workflow_version, \
           c.max_concurrency, c.max_attempts, c.completed_at, \
           (SELECT count(*) FROM collection_windows w WHERE w.collection_id = c.id AND w.status = '{active}') AS active, \
           (SELECT count(*) FROM collection_windows w WHERE w.collection_id = c.id AND w.status = '{pending}') AS pending, \
           (SELECT count(*) FROM collection_windows w WHERE w.collection_id = c.id AND w.status IN ('{failed}', '{cancelled}')) \
             AS failed \
         FROM collections c WHERE c.id = $1 FOR UPDATE OF c",
        active = WindowStatus::Active,
        pending = WindowStatus::Pending,
        failed = WindowStatus::Failed,
        cancelled = WindowStatus::Cancelled,
    );
    Locked::find_by_statement(stmt(&sql, [id.into()]))
        .one(txn)
        .await
}

#[derive(Debug, FromQueryResult)]
struct Due {
    position: i32,
    window_start: NaiveDateTime,
    window_end: NaiveDateTime,
}

/// Starts the next windows and ends the collection when every window has ended. Locks the
/// collection row (the caller may hold it already).
pub(crate) async fn advance_in<C: ConnectionTrait>(
    txn: &C,
    id: CollectionId,
) -> Result<Advanced, DbErr> {
    let Some(c) = lock(txn, id).await? else {
        return Ok(Advanced::default());
    };
    let mut out = Advanced::default();
    let free = i64::from(c.max_concurrency) - c.active;
    let (mut active, mut pending, mut failed) = (c.active, c.pending, c.failed);
    if c.status == CollectionStatus::Running && free > 0 && pending > 0 {
        let due = Due::find_by_statement(stmt(
            "SELECT position, window_start, window_end FROM collection_windows \
             WHERE collection_id = $1 AND status = $2 ORDER BY position LIMIT $3",
            [id.into(), WindowStatus::Pending.into(), free.into()],
        ))
        .all(txn)
        .await?;
        let (started, invalid) = start(txn, id, &c, &due).await?;
        pending -= due.len() as i64;
        active += started.len() as i64;
        failed += invalid;
        out.instance = (!started.is_empty()).then_some(c.instance_id);
        out.started = started;
    }
    if c.completed_at.is_none() && pending == 0 && active == 0 {
        let ended = match c.status {
            CollectionStatus::Cancelled => CollectionStatus::Cancelled,
            _ if failed == 0 => CollectionStatus::Succeeded,
            _ => CollectionStatus::Failed,
        };
        finish(txn, id, c.user_id, ended).await?;
        out.ended = Some(ended);
    }
    Ok(out)
}

/// Creates the runs of `due` windows (queued, in one statement with their audit rows and
/// events) and marks the windows active. A window whose SQL does not render fails at once
/// with the reason. Returns the runs and the number of windows that failed so.
async fn start<C: ConnectionTrait>(
    txn: &C,
    id: CollectionId,
    c: &Locked,
    due: &[Due],
) -> Result<(Vec<ExecutionId>, i64), DbErr> {
    let tz: Tz = c.time_zone.parse().unwrap_or(chrono_tz::UTC);
    let now = crate::execution::now_micros();
    let mut rows: Vec<ExecutionRow> = Vec::new();
    let mut marks: Vec<Value> = Vec::new();
    let mut invalid = 0;
    for w in due {
        let window = TimeWindow {
            start: w.window_start,
            end: w.window_end,
            time_zone: tz,
        };
        let rendered = render_run(
            &c.sql_query,
            &c.parameters,
            &window_params(&c.sql_query, &window),
        );
        match rendered {
            Ok(r) => {
                let run = ExecutionId::new();
                let new = NewExecution {
                    user_id: c.user_id,
                    workflow_id: c.workflow_id,
                    workflow_version: c.workflow_version.unwrap_or(1),
                    instance_id: c.instance_id,
                    sql_query: r.sql_query,
                    parameters: r.parameters,
                    window,
                    triggered_by: TriggeredBy::Collection,
                    idempotency: None,
                    links: Links {
                        schedule_id: None,
                        scheduled_for: None,
                        collection_id: Some(id),
                        batch_id: None,
                        collection_window: Some(w.position),
                        retry_of: None,
                    },
                    trace: None,
                };
                rows.push(queued_row_of(run, &new, now));
                marks.push(json!({"position": w.position, "status": WindowStatus::Active, "execution_id": run,
                                  "error_code": null, "error_message": null}));
            }
            Err(e) => {
                invalid += 1;
                marks.push(json!({"position": w.position, "status": WindowStatus::Failed, "execution_id": null,
                                  "error_code": "invalid_parameters", "error_message": e.to_string()}));
            }
        }
    }
    let started: Vec<ExecutionId> = rows.iter().map(|r| r.id).collect();
    if !rows.is_empty() {
        insert_batch(txn, records_of(&rows), now).await?;
    }
    txn.execute_raw(stmt(
        "UPDATE collection_windows w SET status = t.status, execution_id = coalesce(t.execution_id, w.execution_id), \
           attempts = w.attempts + 1, error_code = coalesce(t.error_code, w.error_code), \
           error_message = coalesce(t.error_message, w.error_message), updated_at = now() \
         FROM jsonb_to_recordset($2::jsonb) AS t(position integer, status text, execution_id uuid, error_code text, \
           error_message text) \
         WHERE w.collection_id = $1 AND w.position = t.position",
        [id.into(), Value::Array(marks).into()],
    ))
    .await?;
    Ok((started, invalid))
}

/// Ends the collection with `status` and records its event (the collection as `GET`
/// shows it, with its counts).
async fn finish<C: ConnectionTrait>(
    txn: &C,
    id: CollectionId,
    user: UserId,
    status: CollectionStatus,
) -> Result<(), DbErr> {
    txn.execute_raw(stmt(
        "UPDATE collections SET status = $2, completed_at = clock_timestamp(), updated_at = now() WHERE id = $1",
        [id.into(), status.into()],
    ))
    .await?;
    let Some(row) = super::store::find_in(txn, user, id).await? else {
        return Ok(());
    };
    let event_type = match status {
        CollectionStatus::Succeeded => EventType::CollectionCompleted,
        CollectionStatus::Cancelled => EventType::CollectionCancelled,
        _ => EventType::CollectionFailed,
    };
    crate::event::record(
        txn,
        NewEvent {
            user,
            event_type,
            subject: id.into(),
            payload: row.public_json(),
        },
    )
    .await
}

/// What the end of a window's run does, in the transaction that ends it: the window
/// succeeds, fails (or goes back to pending while attempts are left and the collection is
/// open), or is cancelled; then the collection advances.
pub(crate) async fn on_run_ended<C: ConnectionTrait>(
    txn: &C,
    run: &ExecutionRow,
    to: ExecutionStatus,
) -> Result<Advanced, DbErr> {
    let Some(id) = run.collection_id else {
        return Ok(Advanced::default());
    };
    let Some(c) = lock(txn, id).await? else {
        return Ok(Advanced::default());
    };
    let next = match to {
        ExecutionStatus::Succeeded => WindowStatus::Succeeded,
        ExecutionStatus::Cancelled => WindowStatus::Cancelled,
        _ => WindowStatus::Failed,
    };
    let retry_allowed = c.status.is_open() && next == WindowStatus::Failed;
    txn.execute_raw(stmt(
        "UPDATE collection_windows SET \
           status = CASE WHEN $4 AND attempts < $5 THEN $6 ELSE $3 END, \
           error_code = $7, error_message = $8, updated_at = now() \
         WHERE collection_id = $1 AND execution_id = $2 AND status = $9",
        [
            id.into(),
            run.id.into(),
            next.into(),
            retry_allowed.into(),
            c.max_attempts.into(),
            WindowStatus::Pending.into(),
            run.error_code.map(|e| e.as_str().to_owned()).into(),
            run.error_message.clone().into(),
            WindowStatus::Active.into(),
        ],
    ))
    .await?;
    advance_in(txn, id).await
}

/// Advances collections that stand still though they should not (found by the
/// reconciler's look: a running one with windows pending and room to start them, or one
/// whose windows have all ended but which has not). Each in a transaction of its own.
pub async fn advance_stalled(
    db: &DatabaseConnection,
    ids: &[CollectionId],
) -> Result<Vec<Advanced>, DbErr> {
    let mut out = Vec::new();
    for id in ids {
        let txn = db.begin().await?;
        let a = advance_in(&txn, *id).await?;
        txn.commit().await?;
        if a != Advanced::default() {
            tracing::warn!(collection.id = %id, started = a.started.len(), ended = ?a.ended, "advanced a collection that stood still");
            out.push(a);
        }
    }
    Ok(out)
}

/// The reconciler's look at collections, as a column of one SELECT: the open ones that
/// stand still.
pub(crate) fn stalled_column() -> String {
    format!(
        "(SELECT coalesce(jsonb_agg(c.id), '[]'::jsonb) FROM collections c \
           CROSS JOIN LATERAL (SELECT \
             (SELECT count(*) FROM collection_windows w WHERE w.collection_id = c.id AND w.status = '{active}') AS active, \
             EXISTS (SELECT 1 FROM collection_windows w WHERE w.collection_id = c.id AND w.status = '{pending}') AS pending) k \
         WHERE c.completed_at IS NULL AND c.updated_at < now() - make_interval(secs => $3) \
           AND ((c.status = '{running}' AND k.pending AND k.active < c.max_concurrency) OR (NOT k.pending AND k.active = 0))) \
         AS stalled_collections",
        active = WindowStatus::Active,
        pending = WindowStatus::Pending,
        running = CollectionStatus::Running,
    )
}
