//! The compare-and-set machinery under the named transitions of this module: a change
//! guarded by status, `next_check_at` and static SQL guards, with its audit row and event.
//! Only code of this module builds changes; everything else calls a named transition.

use super::row::COLUMNS;
use super::{ExecutionRow, Status};
use crate::ids::{ExecutionId, UserId};
use chrono::{DateTime, Utc};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, FromQueryResult, Statement,
    TransactionTrait, Value,
};

/// A compare-and-set change of one execution row.
#[derive(Debug, Clone, Default)]
pub(crate) struct Change {
    /// Only act when the row is in one of these states.
    pub from: Vec<Status>,
    /// Only act when `next_check_at` still equals this (a step job's `due`).
    pub due: Option<DateTime<Utc>>,
    /// Extra guard, written verbatim (static SQL only, never user input).
    pub guard: Option<&'static str>,
    /// Columns to set (static names) and their values.
    pub set: Vec<(&'static str, Value)>,
    /// Why, for the audit row.
    pub reason: Option<String>,
}

impl Change {
    pub fn from(states: &[Status]) -> Self {
        Self {
            from: states.to_vec(),
            ..Default::default()
        }
    }
    pub fn due(mut self, due: Option<DateTime<Utc>>) -> Self {
        self.due = due;
        self
    }
    pub fn guard(mut self, guard: &'static str) -> Self {
        self.guard = Some(guard);
        self
    }
    pub fn set(mut self, col: &'static str, v: impl Into<Value>) -> Self {
        self.set.push((col, v.into()));
        self
    }
    pub fn reason(mut self, r: impl Into<String>) -> Self {
        self.reason = Some(r.into());
        self
    }
}

fn build_update(id: ExecutionId, to: Option<Status>, c: &Change) -> Statement {
    let mut sets = vec!["updated_at = now()".to_string()];
    let mut values: Vec<Value> = Vec::new();
    if let Some(to) = to {
        values.push(to.into());
        sets.push(format!("status = ${}", values.len()));
        // clock_timestamp(), not now(): the transaction may have waited on a lock, and
        // state times must order like the moves themselves.
        sets.push(format!(
            "{} = coalesce({}, clock_timestamp())",
            to.timestamp_column(),
            to.timestamp_column()
        ));
    }
    for (col, v) in &c.set {
        values.push(v.clone());
        sets.push(format!("{col} = ${}", values.len()));
    }
    values.push(id.0.into());
    let mut wheres = vec![format!("id = ${}", values.len())];
    if !c.from.is_empty() {
        let list: Vec<String> = c.from.iter().map(|s| format!("'{s}'")).collect();
        wheres.push(format!("status IN ({})", list.join(", ")));
    }
    if let Some(due) = c.due {
        values.push(due.into());
        wheres.push(format!("next_check_at = ${}", values.len()));
    }
    if let Some(g) = c.guard {
        wheres.push(format!("({g})"));
    }
    let sql = format!(
        "UPDATE executions SET {} WHERE {} RETURNING {COLUMNS}",
        sets.join(", "),
        wheres.join(" AND ")
    );
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}

/// Moves the row to `to` inside `txn` if the change's guards hold; writes the audit row
/// and the event. `None` when the row had already moved (the caller does nothing).
pub(crate) async fn transition_in<C: ConnectionTrait>(
    txn: &C,
    id: ExecutionId,
    to: Status,
    change: &Change,
) -> Result<Option<ExecutionRow>, DbErr> {
    let before: Option<Status> = if change.from.len() == 1 {
        Some(change.from[0])
    } else {
        None
    };
    let Some(row) = ExecutionRow::find_by_statement(build_update(id, Some(to), change))
        .one(txn)
        .await?
    else {
        return Ok(None);
    };
    let from_status = match before {
        Some(b) => Some(b),
        None => previous_status(txn, id).await?,
    };
    txn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "INSERT INTO execution_transitions (execution_id, from_status, to_status, reason) VALUES ($1, $2, $3, $4)",
        [id.into(), from_status.into(), to.into(), change.reason.clone().into()],
    ))
    .await?;
    crate::event::record(
        txn,
        crate::event::NewEvent {
            user: row.user_id,
            event_type: crate::event::EventType::of_execution(to),
            subject: row.id.into(),
            payload: row.public_json(),
        },
    )
    .await?;
    if to.is_terminal() {
        if let Some(schedule) = row.schedule_id {
            crate::schedule::on_run_ended(txn, schedule, to).await?;
        }
        if row.collection_id.is_some() {
            crate::collection::on_run_ended(txn, &row, to).await?;
        }
        if let Some(batch) = row.batch_id {
            crate::batch::on_run_ended(txn, batch).await?;
        }
    }
    Ok(Some(row))
}

/// One row of a batched transition ([`transition_many_in`]).
#[derive(Debug, Clone)]
pub(crate) struct Move {
    pub id: ExecutionId,
    /// Only move the row while its `next_check_at` equals this (the lease its step holds).
    pub due: Option<DateTime<Utc>>,
    /// Its `next_check_at` after the move.
    pub next: DateTime<Utc>,
    /// AMC's id to store (`None` keeps the row's).
    pub amc_execution_id: Option<String>,
    /// The retry attempt to record (`None` keeps the row's).
    pub attempt: Option<i32>,
    /// When its submission to AMC begins (`None` keeps the row's `submit_started_at`).
    pub submit_started: Option<DateTime<Utc>>,
}

/// Moves every row of `moves` still in `from` (and at its `due`) to `to`, a non-terminal
/// state, inside `txn`: one statement for the rows and one for their audit rows (with
/// `reason` of each moved row) and events, where [`transition_in`] takes three round trips
/// per row. Returns the rows that moved; a row that had moved on is left out.
pub(crate) async fn transition_many_in<C: ConnectionTrait>(
    txn: &C,
    from: Status,
    to: Status,
    moves: &[Move],
    reason: impl Fn(&ExecutionRow) -> String,
) -> Result<Vec<ExecutionRow>, DbErr> {
    debug_assert!(
        !to.is_terminal(),
        "terminal moves have their hooks: transition_in"
    );
    if moves.is_empty() {
        return Ok(Vec::new());
    }
    let records: Vec<serde_json::Value> = moves
        .iter()
        .map(|m| {
            serde_json::json!({"id": m.id, "due": m.due, "next": m.next,
                "amc": m.amc_execution_id, "attempt": m.attempt, "started": m.submit_started})
        })
        .collect();
    // Each entry locks its row by primary key if it is still where its step left it; then
    // exactly the locked rows move. clock_timestamp() for the state's time, as a lone
    // transition writes it.
    let column = to.timestamp_column();
    let moved = ExecutionRow::find_by_statement(Statement::from_sql_and_values(
        DbBackend::Postgres,
        format!(
            "WITH m AS (SELECT * FROM jsonb_to_recordset($1::jsonb) \
                 AS m(id uuid, due timestamptz, next timestamptz, amc text, attempt int, \
                   started timestamptz)), \
               t AS (SELECT x.id AS taken, m.next AS new_next, m.amc AS new_amc, \
                   m.attempt AS new_attempt, m.started AS new_started FROM m CROSS JOIN LATERAL \
                 (SELECT id FROM executions WHERE id = m.id AND status = $2 \
                    AND (m.due IS NULL OR next_check_at = m.due) LIMIT 1 FOR UPDATE) x) \
             UPDATE executions SET status = $3, {column} = coalesce({column}, clock_timestamp()), \
               amc_execution_id = coalesce(t.new_amc, executions.amc_execution_id), \
               next_check_at = t.new_next, \
               attempt = coalesce(t.new_attempt, executions.attempt), \
               submit_started_at = coalesce(t.new_started, executions.submit_started_at), \
               updated_at = now() \
             FROM t WHERE id = t.taken RETURNING {COLUMNS}"
        ),
        [
            serde_json::Value::Array(records).into(),
            from.into(),
            to.into(),
        ],
    ))
    .all(txn)
    .await?;
    if moved.is_empty() {
        return Ok(moved);
    }
    let records: Vec<serde_json::Value> = moved
        .iter()
        .map(|r| {
            serde_json::json!({
                "id": r.id,
                "user_id": r.user_id,
                "reason": reason(r),
                "event_id": uuid::Uuid::now_v7(),
                "payload": r.public_json(),
            })
        })
        .collect();
    txn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "WITH t AS MATERIALIZED (SELECT * FROM jsonb_to_recordset($1::jsonb) \
             AS t(id uuid, user_id uuid, reason text, event_id uuid, payload jsonb)), \
           audit AS (INSERT INTO execution_transitions (execution_id, from_status, to_status, reason) \
             SELECT id, $2, $3, reason FROM t) \
         INSERT INTO events (id, user_id, event_type, subject_id, payload) \
           SELECT event_id, user_id, $4, id, payload FROM t",
        [
            serde_json::Value::Array(records).into(),
            from.into(),
            to.into(),
            crate::event::EventType::of_execution(to).into(),
        ],
    ))
    .await?;
    Ok(moved)
}

async fn previous_status<C: ConnectionTrait>(
    txn: &C,
    id: ExecutionId,
) -> Result<Option<Status>, DbErr> {
    let r = txn
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT to_status FROM execution_transitions WHERE execution_id = $1 ORDER BY id DESC LIMIT 1",
            [id.into()],
        ))
        .await?;
    r.map(|r| r.try_get::<Status>("", "to_status")).transpose()
}

/// [`transition_in`] in a transaction of its own.
pub(crate) async fn transition(
    db: &DatabaseConnection,
    id: ExecutionId,
    to: Status,
    change: &Change,
) -> Result<Option<ExecutionRow>, DbErr> {
    let txn = db.begin().await?;
    let row = transition_in(&txn, id, to, change).await?;
    txn.commit().await?;
    Ok(row)
}

/// A compare-and-set change without a state change (no audit row, no event): the
/// retry bookkeeping, `next_check_at`, the AMC id.
pub(crate) async fn touch<C: ConnectionTrait>(
    conn: &C,
    id: ExecutionId,
    change: &Change,
) -> Result<Option<ExecutionRow>, DbErr> {
    ExecutionRow::find_by_statement(build_update(id, None, change))
        .one(conn)
        .await
}

/// One execution by id.
pub async fn find<C: ConnectionTrait>(
    conn: &C,
    id: ExecutionId,
) -> Result<Option<ExecutionRow>, DbErr> {
    ExecutionRow::find_by_statement(Statement::from_sql_and_values(
        DbBackend::Postgres,
        format!("SELECT {COLUMNS} FROM executions WHERE id = $1"),
        [id.into()],
    ))
    .one(conn)
    .await
}

/// One execution of this user (tenancy: another user's id reads as missing).
pub async fn find_for_user<C: ConnectionTrait>(
    conn: &C,
    user: UserId,
    id: ExecutionId,
) -> Result<Option<ExecutionRow>, DbErr> {
    ExecutionRow::find_by_statement(Statement::from_sql_and_values(
        DbBackend::Postgres,
        format!("SELECT {COLUMNS} FROM executions WHERE id = $1 AND user_id = $2"),
        [id.into(), user.into()],
    ))
    .one(conn)
    .await
}

/// One audit row.
#[derive(Debug, Clone, FromQueryResult)]
pub struct TransitionRow {
    pub from_status: Option<Status>,
    pub to_status: Status,
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// The audit trail of one execution, oldest first.
pub async fn transitions<C: ConnectionTrait>(
    conn: &C,
    id: ExecutionId,
) -> Result<Vec<TransitionRow>, DbErr> {
    TransitionRow::find_by_statement(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT from_status, to_status, reason, created_at FROM execution_transitions WHERE execution_id = $1 ORDER BY id",
        [id.into()],
    ))
    .all(conn)
    .await
}

/// The `next_check_at` an execution holds now (a step's lease, or its next check).
pub async fn current_due<C: ConnectionTrait>(
    conn: &C,
    id: ExecutionId,
) -> Result<Option<DateTime<Utc>>, DbErr> {
    let r = conn
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT next_check_at FROM executions WHERE id = $1",
            [id.into()],
        ))
        .await?;
    Ok(r.map(|r| r.try_get("", "next_check_at"))
        .transpose()?
        .flatten())
}
