//! Batched reads and reschedules of step rows, for the worker's hot path.
//!
//! A status check reads its row, where the run is (instance, account, region) and its
//! owner's token state in one statement shared with every check due at the same moment,
//! and, when nothing changed, moves `next_check_at` by compare-and-set in one statement
//! shared likewise. Each entry is matched on `(id, status, next_check_at = due)` exactly as
//! a lone compare-and-set would be, so twins and late steps still do nothing.

use super::row::COLUMNS;
use super::store::{Move, transition_many_in};
use super::target::Target;
use super::{ExecutionRow, Status};
use crate::connection::TokenState;
use crate::ids::{AmcExecutionId, ConnectionId, ExecutionId, InstanceId};
use chrono::{DateTime, Utc};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, FromQueryResult, QueryResult, Statement,
    TransactionTrait,
};
use serde_json::{Value, json};
use std::collections::HashMap;

/// A step's row, ready to act on: the execution, where it runs, and its owner's token.
#[derive(Debug, Clone)]
pub struct DueStep {
    pub row: ExecutionRow,
    pub target: Target,
    /// `None` when the owner has no connection.
    pub token: Option<TokenState>,
}

impl DueStep {
    fn from_row(r: &QueryResult) -> Result<Self, DbErr> {
        Ok(Self {
            row: ExecutionRow::from_query_result(r, "")?,
            target: Target::from_query_result(r, "")?,
            token: token_of(r)?,
        })
    }
}

/// The owner's token state of a row of [`with_targets`] (`None` without a connection).
fn token_of(r: &QueryResult) -> Result<Option<TokenState>, DbErr> {
    let connection_id: Option<ConnectionId> = r.try_get("", "connection_id")?;
    let Some(_) = connection_id else {
        return Ok(None);
    };
    Ok(Some(TokenState {
        status: r.try_get("", "connection_status")?,
        last_error: r.try_get("", "connection_error")?,
        access_token_enc: r.try_get("", "access_token_enc")?,
        access_token_expires_at: r.try_get("", "access_token_expires_at")?,
        updated_at: r.try_get("", "connection_updated_at")?,
    }))
}

/// These rows as steps ready to act on: where each runs and its owner's token state,
/// read with one statement for all their instances. A row whose instance is gone is left
/// out.
pub(crate) async fn due_steps_of<C: ConnectionTrait>(
    conn: &C,
    rows: Vec<ExecutionRow>,
) -> Result<Vec<DueStep>, DbErr> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let mut instances: Vec<uuid::Uuid> = rows.iter().map(|r| r.instance_id.0).collect();
    instances.sort_unstable();
    instances.dedup();
    let found = conn
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            with_targets("SELECT unnest($1::uuid[]) AS instance_id"),
            [instances.into()],
        ))
        .await?;
    let mut at: HashMap<InstanceId, (Target, Option<TokenState>)> = HashMap::new();
    for r in &found {
        let instance: InstanceId = r.try_get("", "instance_id")?;
        at.insert(instance, (Target::from_query_result(r, "")?, token_of(r)?));
    }
    Ok(rows
        .into_iter()
        .filter_map(|row| {
            let (target, token) = at.get(&row.instance_id)?.clone();
            Some(DueStep { row, target, token })
        })
        .collect())
}

/// The rows of these steps that are still due: in `status`, with `next_check_at` equal to
/// the step's `due`. A step whose row moved on (a twin, a late job) is left out.
pub async fn read_due<C: ConnectionTrait>(
    conn: &C,
    status: Status,
    steps: &[(ExecutionId, DateTime<Utc>)],
) -> Result<Vec<DueStep>, DbErr> {
    if steps.is_empty() {
        return Ok(Vec::new());
    }
    let wanted = due_records(steps);
    // One primary-key look-up per entry (LATERAL … LIMIT 1 keeps the planner from merging
    // on `next_check_at`, which walks every active row older than the due ones).
    let rows = format!(
        "SELECT x.* FROM jsonb_to_recordset($1::jsonb) AS w(id uuid, due timestamptz) \
           CROSS JOIN LATERAL (SELECT {COLUMNS} FROM executions \
             WHERE id = w.id AND next_check_at = w.due AND status = $2 LIMIT 1) x"
    );
    let rows = conn
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            with_targets(&rows),
            [wanted.into(), status.into()],
        ))
        .await?;
    rows.iter().map(DueStep::from_row).collect()
}

/// Steps as `jsonb_to_recordset` rows `(id uuid, due timestamptz)`.
fn due_records(steps: &[(ExecutionId, DateTime<Utc>)]) -> Value {
    Value::Array(
        steps
            .iter()
            .map(|(id, due)| json!({"id": id.0, "due": due}))
            .collect(),
    )
}

/// `rows` (a statement returning execution [`COLUMNS`], named `e` here) joined with where
/// each runs and its owner's token state, as [`DueStep::from_row`] reads them.
fn with_targets(rows: &str) -> String {
    format!(
        "WITH e AS ({rows}) \
         SELECT e.*, {}, c.status AS connection_status, c.last_error AS connection_error, \
           c.access_token_enc, c.access_token_expires_at, c.updated_at AS connection_updated_at \
         FROM e {}",
        super::target::TARGET_COLUMNS,
        super::target::target_joins("e.instance_id"),
    )
}

/// Begins the submissions of these `submitting` steps that can go straight to AMC: each
/// row still due at its step's `due`, with no submission begun before (none in doubt) and
/// no cancel asked for, is leased until `until` and records `submit_started_at` (as
/// [`super::lease`] and [`super::begin_submission`] would, in one statement for all of
/// them). Rows left out (in doubt, cancelled, moved on) take the step's one-by-one path.
pub async fn begin_submissions<C: ConnectionTrait>(
    conn: &C,
    steps: &[(ExecutionId, DateTime<Utc>)],
    until: DateTime<Utc>,
    started: DateTime<Utc>,
) -> Result<Vec<DueStep>, DbErr> {
    if steps.is_empty() {
        return Ok(Vec::new());
    }
    let wanted = due_records(steps);
    // Each entry locks its row by primary key if it is still where the step left it; then
    // exactly the locked rows move (as `reschedule_many` does).
    let rows = format!(
        "WITH t AS (SELECT x.id AS taken FROM jsonb_to_recordset($1::jsonb) AS w(id uuid, due timestamptz) \
           CROSS JOIN LATERAL (SELECT id FROM executions WHERE id = w.id AND status = $2 \
             AND next_check_at = w.due AND submit_started_at IS NULL \
             AND cancel_requested_at IS NULL LIMIT 1 FOR UPDATE) x) \
         UPDATE executions SET next_check_at = $3, submit_started_at = $4, updated_at = now() \
         FROM t WHERE id = t.taken RETURNING {COLUMNS}"
    );
    let rows = conn
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            with_targets(&rows),
            [
                wanted.into(),
                Status::Submitting.into(),
                until.into(),
                started.into(),
            ],
        ))
        .await?;
    rows.iter().map(DueStep::from_row).collect()
}

/// A submitted run to move to `running`.
#[derive(Debug, Clone)]
pub struct Submitted {
    pub id: ExecutionId,
    /// The lease its submit step holds (`next_check_at`).
    pub held_at: DateTime<Utc>,
    pub amc_execution_id: AmcExecutionId,
    /// Its first status check.
    pub first_check: DateTime<Utc>,
}

/// Stores each run's AMC id and moves it to `running` (its first check due), with its
/// audit row and `execution.running` event, as a lone transition would: one transaction
/// for all of them. Returns the rows that moved; one whose lease was
/// taken over meanwhile is left out (the step that holds it now acts).
pub async fn mark_running_many(
    db: &DatabaseConnection,
    runs: &[Submitted],
) -> Result<Vec<ExecutionRow>, DbErr> {
    if runs.is_empty() {
        return Ok(Vec::new());
    }
    let moves: Vec<Move> = runs
        .iter()
        .map(|r| Move {
            id: r.id,
            due: Some(r.held_at),
            next: r.first_check,
            amc_execution_id: Some(r.amc_execution_id.as_str().to_owned()),
            attempt: Some(0),
            submit_started: None,
        })
        .collect();
    let txn = db.begin().await?;
    let moved = transition_many_in(&txn, Status::Submitting, Status::Running, &moves, |r| {
        let amc = r.amc_execution_id.as_ref().map(|a| a.as_str());
        format!("submitted to AMC as {}", amc.unwrap_or_default())
    })
    .await?;
    txn.commit().await?;
    Ok(moved)
}

/// One step to schedule again: its row moves from `due` to `next` if still in `status`.
#[derive(Debug, Clone)]
pub struct Reschedule {
    pub id: ExecutionId,
    pub status: Status,
    pub due: DateTime<Utc>,
    pub next: DateTime<Utc>,
    /// The retry attempt to record; `None` keeps the row's.
    pub attempt: Option<i32>,
}

/// A step that was scheduled again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rescheduled {
    pub id: ExecutionId,
    pub next: DateTime<Utc>,
    /// The user asked to cancel: run the next step now, not at `next`.
    pub cancel_requested: bool,
}

/// Moves every step whose row is still where its step left it; returns those moved.
pub async fn reschedule_many<C: ConnectionTrait>(
    conn: &C,
    steps: &[Reschedule],
) -> Result<Vec<Rescheduled>, DbErr> {
    if steps.is_empty() {
        return Ok(Vec::new());
    }
    let moves: Vec<Value> = steps
        .iter()
        .map(|s| {
            json!({"id": s.id, "status": s.status, "due": s.due, "next": s.next, "attempt": s.attempt})
        })
        .collect();
    let rows = conn
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            // Each entry locks its row by primary key if it is still where the step left
            // it; then exactly the locked rows move.
            "WITH m AS (SELECT * FROM jsonb_to_recordset($1::jsonb) \
                 AS m(id uuid, status text, due timestamptz, next timestamptz, attempt int)), \
               t AS (SELECT x.id, m.next, m.attempt FROM m CROSS JOIN LATERAL \
                 (SELECT id FROM executions WHERE id = m.id AND status = m.status \
                    AND next_check_at = m.due LIMIT 1 FOR UPDATE) x) \
             UPDATE executions e SET next_check_at = t.next, attempt = coalesce(t.attempt, e.attempt), \
               updated_at = now() \
             FROM t WHERE e.id = t.id \
             RETURNING e.id, e.next_check_at, e.cancel_requested_at IS NOT NULL AS cancel_requested",
            [Value::Array(moves).into()],
        ))
        .await?;
    rows.iter()
        .map(|r| {
            Ok(Rescheduled {
                id: r.try_get("", "id")?,
                next: r.try_get("", "next_check_at")?,
                cancel_requested: r.try_get("", "cancel_requested")?,
            })
        })
        .collect()
}

/// Where a run stands: its state and where it runs (the account its admission goes by).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    pub id: ExecutionId,
    pub status: Status,
    pub instance_id: crate::ids::InstanceId,
    pub account_id: crate::ids::AccountId,
}

/// The state and account of each of these runs, in one statement (a run whose instance is
/// gone is left out).
pub async fn standings<C: ConnectionTrait>(
    conn: &C,
    ids: &[ExecutionId],
) -> Result<Vec<Standing>, DbErr> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<uuid::Uuid> = ids.iter().map(|i| i.0).collect();
    let rows = conn
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT e.id, e.status, e.instance_id, i.account_id FROM executions e \
             JOIN amc_instances i ON i.id = e.instance_id WHERE e.id = ANY($1)",
            [ids.into()],
        ))
        .await?;
    rows.iter()
        .map(|r| {
            Ok(Standing {
                id: r.try_get("", "id")?,
                status: r.try_get("", "status")?,
                instance_id: r.try_get("", "instance_id")?,
                account_id: r.try_get("", "account_id")?,
            })
        })
        .collect()
}
