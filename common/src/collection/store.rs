//! The `collections` table and its windows: a user's collections, created against one of
//! their workflows (or one of their schedules: a backfill), read, paused, resumed,
//! cancelled and reopened; every query is scoped to its owner.

use super::advance::{self, Advanced};
use super::row::{
    COLUMNS, CollectionRow, CollectionStatus, ShownStatus, WINDOW_JSON, WindowRow, WindowStatus,
    Windows, joins, shown_status_sql,
};
use super::window::{self, Dates, Granularity, Limits, RangeError};
use crate::execution::{CancelOutcome, render_run, request_cancel_because};
use crate::ids::{CollectionId, ExecutionId, InstanceId, ScheduleId, UserId, WorkflowId};
use crate::repo::stmt;
use crate::schedule::WeekStart;
use crate::schedule::store::window_params;
use crate::schedule::window::{first_instant, local_instant};
use crate::sql::RenderError;
use crate::time_window::TimeWindow;
use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, FromQueryResult, TransactionTrait};
use serde_json::{Map, Value, json};

/// What a collection is made of, checked by the API (the range is checked here).
#[derive(Debug, Clone)]
pub struct CollectionSpec {
    pub workflow_id: WorkflowId,
    pub name: Option<String>,
    /// `None`: the default range of the granularity.
    pub range: Option<Dates>,
    pub granularity: Granularity,
    pub week_starts: WeekStart,
    pub tz: Tz,
    pub parameters: Map<String, Value>,
    pub max_concurrency: i32,
    pub max_attempts: i32,
}

/// Why a collection was not written (or changed).
#[derive(Debug, thiserror::Error)]
pub enum CollectionError {
    #[error("workflow not found")]
    WorkflowNotFound,
    #[error("schedule not found")]
    ScheduleNotFound,
    #[error("collection not found")]
    NotFound,
    /// The range is wrong; the field is `start` or `end`.
    #[error(transparent)]
    Range(#[from] RangeError),
    /// The workflow's SQL cannot be rendered with the collection's parameters.
    #[error(transparent)]
    Render(#[from] RenderError),
    /// The collection is not in a state that allows this (the message says why).
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// A collection just created, and the runs it started (their submit jobs go after the
/// commit).
#[derive(Debug)]
pub struct Created {
    pub collection: CollectionRow,
    pub started: Vec<ExecutionId>,
}

/// The workflow a collection runs: its SQL, defaults and instance, if the user owns it.
struct Workflow {
    sql_query: String,
    /// The latest version, which the collection pins.
    version: i32,
    parameters: Value,
    instance_id: InstanceId,
}

async fn workflow_of<C: ConnectionTrait>(
    conn: &C,
    user: UserId,
    id: WorkflowId,
) -> Result<Workflow, CollectionError> {
    let r = conn
        .query_one_raw(stmt(
            "SELECT sql_query, parameters, instance_id, version FROM workflows \
             WHERE id = $1 AND user_id = $2 AND deleted_at IS NULL",
            [id.into(), user.into()],
        ))
        .await?
        .ok_or(CollectionError::WorkflowNotFound)?;
    Ok(Workflow {
        sql_query: r.try_get("", "sql_query")?,
        version: r.try_get("", "version")?,
        parameters: r.try_get("", "parameters")?,
        instance_id: r.try_get("", "instance_id")?,
    })
}

/// Whether the workflow is the user's (a dry run creates nothing but checks it).
pub async fn check_workflow(
    db: &DatabaseConnection,
    user: UserId,
    id: WorkflowId,
) -> Result<(), CollectionError> {
    workflow_of(db, user, id).await.map(|_| ())
}

/// Today in `tz`.
fn today_in(tz: Tz) -> NaiveDate {
    Utc::now().with_timezone(&tz).date_naive()
}

/// A window's local bounds in `tz` (midnights, or the first instant of a day whose
/// midnight the zone skips).
pub fn time_window_of((start, end): Dates, tz: Tz) -> TimeWindow {
    TimeWindow {
        start: first_instant(start, tz),
        end: first_instant(end, tz),
        time_zone: tz,
    }
}

/// The windows of `spec`, checked against `limits` (a dry run shows these).
pub fn plan(spec: &CollectionSpec, limits: Limits) -> Result<Vec<Dates>, RangeError> {
    let today = today_in(spec.tz);
    let range = spec
        .range
        .unwrap_or_else(|| window::default_range(spec.granularity, spec.week_starts, today));
    window::windows(range, spec.granularity, spec.week_starts, today, limits)
}

/// Checks that every window renders (the placeholders all have values: the workflow's
/// defaults, the collection's parameters, `{{window_start}}`/`{{window_end}}`); returns
/// the merged parameters the collection runs with.
fn check_renders(
    wf: &Workflow,
    given: &Map<String, Value>,
    first: &TimeWindow,
) -> Result<Value, RenderError> {
    let mut with_window = given.clone();
    with_window.extend(window_params(&wf.sql_query, first));
    render_run(&wf.sql_query, &wf.parameters, &with_window)?;
    let mut merged = wf.parameters.as_object().cloned().unwrap_or_default();
    merged.extend(given.clone());
    Ok(Value::Object(merged))
}

/// What [`insert`] writes.
struct NewCollection<'a> {
    user: UserId,
    workflow_id: WorkflowId,
    schedule_id: Option<ScheduleId>,
    name: String,
    range: Dates,
    granularity: Granularity,
    week_starts: WeekStart,
    tz: Tz,
    max_concurrency: i32,
    max_attempts: i32,
    windows: &'a [TimeWindow],
}

/// Writes a collection, its windows and its first runs in one transaction.
async fn insert(
    db: &DatabaseConnection,
    wf: &Workflow,
    parameters: Value,
    n: NewCollection<'_>,
) -> Result<Created, CollectionError> {
    let txn = db.begin().await?;
    let id = CollectionId::new();
    txn.execute_raw(stmt(
        "INSERT INTO collections (id, user_id, workflow_id, instance_id, schedule_id, name, start_date, end_date, \
           granularity, week_starts, time_zone, parameters, sql_query, max_concurrency, max_attempts, status, \
           window_count, workflow_version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
        [
            id.into(),
            n.user.into(),
            n.workflow_id.into(),
            wf.instance_id.into(),
            n.schedule_id.into(),
            n.name.into(),
            n.range.0.into(),
            n.range.1.into(),
            n.granularity.into(),
            n.week_starts.into(),
            n.tz.name().to_owned().into(),
            parameters.into(),
            wf.sql_query.clone().into(),
            n.max_concurrency.into(),
            n.max_attempts.into(),
            CollectionStatus::Running.into(),
            (n.windows.len() as i32).into(),
            wf.version.into(),
        ],
    ))
    .await?;
    let rows: Vec<Value> = n
        .windows
        .iter()
        .enumerate()
        .map(|(i, w)| json!({"position": i, "start": w.start, "end": w.end}))
        .collect();
    txn.execute_raw(stmt(
        "INSERT INTO collection_windows (collection_id, position, window_start, window_end) \
         SELECT $1, t.position, t.start, t.end \
         FROM jsonb_to_recordset($2::jsonb) AS t(position integer, start timestamp, \"end\" timestamp)",
        [id.into(), Value::Array(rows).into()],
    ))
    .await?;
    let Advanced { started, .. } = advance::advance_in(&txn, id).await?;
    let collection = find_in(&txn, n.user, id)
        .await?
        .ok_or(CollectionError::NotFound)?;
    txn.commit().await?;
    Ok(Created {
        collection,
        started,
    })
}

/// Creates a collection of the user's workflow: its windows, and the first
/// `max_concurrency` runs, in one transaction.
pub async fn create(
    db: &DatabaseConnection,
    user: UserId,
    spec: &CollectionSpec,
    limits: Limits,
) -> Result<Created, CollectionError> {
    let wf = workflow_of(db, user, spec.workflow_id).await?;
    let dates = plan(spec, limits)?;
    let windows: Vec<TimeWindow> = dates.iter().map(|d| time_window_of(*d, spec.tz)).collect();
    let parameters = check_renders(&wf, &spec.parameters, &windows[0])?;
    let range = (dates[0].0, dates[dates.len() - 1].1);
    let name = spec
        .name
        .clone()
        .unwrap_or_else(|| format!("{} {} to {}", spec.granularity, range.0, range.1));
    insert(
        db,
        &wf,
        parameters,
        NewCollection {
            user,
            workflow_id: spec.workflow_id,
            schedule_id: None,
            name,
            range,
            granularity: spec.granularity,
            week_starts: spec.week_starts,
            tz: spec.tz,
            max_concurrency: spec.max_concurrency,
            max_attempts: spec.max_attempts,
            windows: &windows,
        },
    )
    .await
}

/// What a backfill of a schedule asks for.
#[derive(Debug, Clone)]
pub struct BackfillSpec {
    pub schedule_id: ScheduleId,
    pub range: Dates,
    pub max_concurrency: i32,
    pub max_attempts: i32,
}

/// The windows of a schedule's fires in `range` (dates in its zone, `end` exclusive), each
/// resolved as the fire would have been; they must not overlap.
pub async fn backfill(
    db: &DatabaseConnection,
    user: UserId,
    spec: &BackfillSpec,
    limits: Limits,
) -> Result<Created, CollectionError> {
    let schedule = crate::schedule::get(db, user, spec.schedule_id)
        .await?
        .ok_or(CollectionError::ScheduleNotFound)?;
    let (Some(rule), Some(rule_window)) = (schedule.rule(), schedule.window()) else {
        return Err(CollectionError::ScheduleNotFound);
    };
    let tz = schedule.tz();
    let (start, end) = spec.range;
    let today = today_in(tz);
    if end <= start {
        return Err(RangeError::new("end", format!("{end} must be after start ({start})")).into());
    }
    if end > today {
        return Err(RangeError::new(
            "end",
            format!("{end} is in the future: the last fire must have happened by today ({today})"),
        )
        .into());
    }
    let earliest = today - chrono::Days::new(limits.max_lookback_days);
    let from = local_instant(start, tz);
    let to = local_instant(end, tz) - chrono::Duration::microseconds(1);
    let fires = rule.ticks_between(from, to, tz, limits.max_windows + 1);
    if fires.len() > limits.max_windows {
        return Err(RangeError::new(
            "start",
            format!(
                "the range has more than {} fires (AMP_COLLECTION_MAX_WINDOWS)",
                limits.max_windows
            ),
        )
        .into());
    }
    if fires.is_empty() {
        return Err(RangeError::new("end", "the schedule does not fire in this range").into());
    }
    let windows: Vec<TimeWindow> = fires.iter().map(|t| rule_window.resolve(*t, tz)).collect();
    let dates: Vec<Dates> = windows
        .iter()
        .map(|w| (w.start.date(), w.end.date()))
        .collect();
    if dates[0].0 < earliest {
        return Err(RangeError::new(
            "start",
            format!(
                "its first window starts {}, more than {} days back (AMP_COLLECTION_MAX_LOOKBACK)",
                dates[0].0, limits.max_lookback_days
            ),
        )
        .into());
    }
    window::check_disjoint(&dates)?;
    let wf = workflow_of(db, user, schedule.workflow_id).await?;
    let parameters = check_renders(&wf, &schedule.params(), &windows[0])?;
    insert(
        db,
        &wf,
        parameters,
        NewCollection {
            user,
            workflow_id: schedule.workflow_id,
            schedule_id: Some(schedule.id),
            name: format!("backfill of {} {start} to {end}", schedule.name),
            range: spec.range,
            granularity: Granularity::Schedule,
            week_starts: WeekStart::Monday,
            tz,
            max_concurrency: spec.max_concurrency,
            max_attempts: spec.max_attempts,
            windows: &windows,
        },
    )
    .await
}

pub(crate) async fn find_in<C: ConnectionTrait>(
    conn: &C,
    user: UserId,
    id: CollectionId,
) -> Result<Option<CollectionRow>, DbErr> {
    let sql = format!(
        "SELECT {COLUMNS} FROM collections c {} WHERE c.id = $1 AND c.user_id = $2",
        joins()
    );
    CollectionRow::find_by_statement(stmt(&sql, [id.into(), user.into()]))
        .one(conn)
        .await
}

/// The user's collection (another user's reads as missing).
pub async fn get(
    db: &DatabaseConnection,
    user: UserId,
    id: CollectionId,
) -> Result<Option<CollectionRow>, DbErr> {
    find_in(db, user, id).await
}

/// A page of the user's collections, newest first, after `after` (a `(created_at, id)`).
pub async fn list(
    db: &DatabaseConnection,
    user: UserId,
    after: Option<(DateTime<Utc>, CollectionId)>,
    limit: u64,
) -> Result<Vec<CollectionRow>, DbErr> {
    let (at, id) = after.map_or((None, None), |(a, i)| (Some(a), Some(i)));
    let sql = format!(
        "SELECT {COLUMNS} FROM (SELECT * FROM collections WHERE user_id = $1 \
           AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3)) \
           ORDER BY created_at DESC, id DESC LIMIT $4) c {} ORDER BY c.created_at DESC, c.id DESC",
        joins()
    );
    CollectionRow::find_by_statement(stmt(
        &sql,
        [user.into(), at.into(), id.into(), (limit as i64).into()],
    ))
    .all(db)
    .await
}

/// Which windows of a collection a page holds.
#[derive(Debug, Clone, Copy)]
pub struct WindowQuery {
    /// Only windows after this position.
    pub after: Option<i32>,
    pub limit: u64,
    /// Only windows that show this status.
    pub status: Option<ShownStatus>,
}

/// A page of a collection's windows, oldest first. `None` when the collection is not the
/// user's.
pub async fn windows(
    db: &DatabaseConnection,
    user: UserId,
    id: CollectionId,
    q: WindowQuery,
) -> Result<Option<Vec<WindowRow>>, DbErr> {
    let owned = db
        .query_one_raw(stmt(
            "SELECT 1 AS one FROM collections WHERE id = $1 AND user_id = $2",
            [id.into(), user.into()],
        ))
        .await?;
    if owned.is_none() {
        return Ok(None);
    }
    // A status reads its partial index (pending, active, failed) or the primary key.
    let only = q.status.map_or_else(|| "true".to_owned(), shown_status_sql);
    let page = db
        .query_one_raw(stmt(
            &format!(
                "SELECT coalesce(jsonb_agg(p.doc ORDER BY p.position), '[]'::jsonb) AS windows \
                 FROM (SELECT w.position, {WINDOW_JSON} AS doc \
                   FROM collection_windows w LEFT JOIN executions e ON e.id = w.execution_id \
                   WHERE w.collection_id = $1 AND w.position > coalesce($2, -1) AND {only} \
                   ORDER BY w.position LIMIT $3) p"
            ),
            [id.into(), q.after.into(), (q.limit as i64).into()],
        ))
        .await?;
    let windows = match page {
        Some(r) => r.try_get::<Windows>("", "windows")?.0,
        None => Vec::new(),
    };
    Ok(Some(windows))
}

/// Locks the user's collection for a change; its status.
async fn lock<C: ConnectionTrait>(
    txn: &C,
    user: UserId,
    id: CollectionId,
) -> Result<CollectionStatus, CollectionError> {
    let r = txn
        .query_one_raw(stmt(
            "SELECT status FROM collections WHERE id = $1 AND user_id = $2 FOR UPDATE",
            [id.into(), user.into()],
        ))
        .await?
        .ok_or(CollectionError::NotFound)?;
    Ok(r.try_get("", "status")?)
}

async fn set_status<C: ConnectionTrait>(
    txn: &C,
    id: CollectionId,
    status: CollectionStatus,
) -> Result<(), DbErr> {
    txn.execute_raw(stmt(
        "UPDATE collections SET status = $2, completed_at = NULL, updated_at = now() WHERE id = $1",
        [id.into(), status.into()],
    ))
    .await?;
    Ok(())
}

/// A collection after a change, and the runs the change started.
#[derive(Debug)]
pub struct Changed {
    pub collection: CollectionRow,
    pub started: Vec<ExecutionId>,
    /// Runs at AMC whose cancellation a worker carries out (their cancel jobs go after the
    /// commit).
    pub cancel_requested: Vec<ExecutionId>,
}

async fn changed(
    db: &DatabaseConnection,
    user: UserId,
    id: CollectionId,
    started: Vec<ExecutionId>,
    cancel_requested: Vec<ExecutionId>,
) -> Result<Changed, CollectionError> {
    let collection = find_in(db, user, id)
        .await?
        .ok_or(CollectionError::NotFound)?;
    Ok(Changed {
        collection,
        started,
        cancel_requested,
    })
}

fn ended(status: CollectionStatus) -> CollectionError {
    CollectionError::Conflict(format!("the collection has ended ({status})"))
}

/// Pauses a running collection: no new window starts; running ones finish (a window whose
/// run still waits for a slot waits until resumed).
pub async fn pause(
    db: &DatabaseConnection,
    user: UserId,
    id: CollectionId,
) -> Result<Changed, CollectionError> {
    let txn = db.begin().await?;
    match lock(&txn, user, id).await? {
        CollectionStatus::Running => set_status(&txn, id, CollectionStatus::Paused).await?,
        CollectionStatus::Paused => {}
        other => return Err(ended(other)),
    }
    txn.commit().await?;
    changed(db, user, id, Vec::new(), Vec::new()).await
}

/// Resumes a paused collection: windows start again.
pub async fn resume(
    db: &DatabaseConnection,
    user: UserId,
    id: CollectionId,
) -> Result<Changed, CollectionError> {
    let txn = db.begin().await?;
    match lock(&txn, user, id).await? {
        CollectionStatus::Paused => set_status(&txn, id, CollectionStatus::Running).await?,
        CollectionStatus::Running => {}
        other => return Err(ended(other)),
    }
    let Advanced { started, .. } = advance::advance_in(&txn, id).await?;
    txn.commit().await?;
    changed(db, user, id, started, Vec::new()).await
}

/// Cancels a collection: no window starts again; windows not started are cancelled, and
/// so are the runs still going (queued ones at once, those at AMC by a worker). The
/// collection ends `cancelled` (with its event) once every window has ended.
pub async fn cancel(
    db: &DatabaseConnection,
    user: UserId,
    id: CollectionId,
) -> Result<Changed, CollectionError> {
    let txn = db.begin().await?;
    let status = lock(&txn, user, id).await?;
    if !status.is_open() {
        return Err(ended(status));
    }
    set_status(&txn, id, CollectionStatus::Cancelled).await?;
    txn.execute_raw(stmt(
        "UPDATE collection_windows SET status = $2, updated_at = now() WHERE collection_id = $1 AND status = $3",
        [
            id.into(),
            WindowStatus::Cancelled.into(),
            WindowStatus::Pending.into(),
        ],
    ))
    .await?;
    let active: Vec<ExecutionId> = txn
        .query_all_raw(stmt(
            "SELECT execution_id FROM collection_windows WHERE collection_id = $1 AND status = $2 \
               AND execution_id IS NOT NULL",
            [id.into(), WindowStatus::Active.into()],
        ))
        .await?
        .iter()
        .map(|r| r.try_get("", "execution_id"))
        .collect::<Result<_, _>>()?;
    // With no run going, the collection has ended now.
    advance::advance_in(&txn, id).await?;
    txn.commit().await?;
    let mut requested = Vec::new();
    for run in active {
        let reason = "cancelled with its collection";
        if let CancelOutcome::Requested(row) = request_cancel_because(db, user, run, reason).await?
        {
            requested.push(row.id);
        }
    }
    changed(db, user, id, Vec::new(), requested).await
}

/// Reopens the failed and cancelled windows (never a queued or running one) with a fresh
/// budget of attempts; an ended collection runs again (a paused one stays paused).
pub async fn retry_failed(
    db: &DatabaseConnection,
    user: UserId,
    id: CollectionId,
) -> Result<Changed, CollectionError> {
    let txn = db.begin().await?;
    let status = lock(&txn, user, id).await?;
    let deleted = txn
        .query_one_raw(stmt(
            "SELECT 1 FROM collections c JOIN workflows w ON w.id = c.workflow_id \
             WHERE c.id = $1 AND w.deleted_at IS NOT NULL",
            [id.into()],
        ))
        .await?;
    if deleted.is_some() {
        return Err(CollectionError::Conflict(
            "its workflow has been deleted".into(),
        ));
    }
    let reopened = txn
        .execute_raw(stmt(
            "UPDATE collection_windows SET status = $2, attempts = 0, error_code = NULL, error_message = NULL, \
               updated_at = now() WHERE collection_id = $1 AND status IN ($3, $4)",
            [
                id.into(),
                WindowStatus::Pending.into(),
                WindowStatus::Failed.into(),
                WindowStatus::Cancelled.into(),
            ],
        ))
        .await?
        .rows_affected();
    if reopened == 0 {
        return Err(CollectionError::Conflict(
            "no window has failed or been cancelled".into(),
        ));
    }
    if !status.is_open() {
        set_status(&txn, id, CollectionStatus::Running).await?;
    }
    let Advanced { started, .. } = advance::advance_in(&txn, id).await?;
    txn.commit().await?;
    changed(db, user, id, started, Vec::new()).await
}
