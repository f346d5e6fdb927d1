//! A fire pass: the due schedules are taken with `FOR UPDATE SKIP LOCKED` (so replicas
//! share the work and never take the same schedule), planned without I/O, and written in
//! one transaction per batch: the runs with their audit rows and events under the unique
//! `(schedule_id, scheduled_for)` key, the history of every tick, the schedules' next ticks.
//! The submit jobs are pushed by the caller after the commit; the reconciler covers a
//! lost push.
//!
//! Which ticks were *missed* is decided from the replicas' lives (`schedulers`): a tick
//! that came due while some replica was alive is fired, late at worst; one that came due
//! while none was is missed, and the catch-up policy decides.

use super::plan::{self, Lives, Plan, State};
use super::policy::RunOutcome;
use super::store::{COLUMNS, ScheduleRow, window_params};
use crate::execution::{
    ExecutionRow, ExecutionStatus as Status, Links, NewExecution, TriggeredBy, insert_batch,
    queued_row_of, records_of, render_run,
};
use crate::ids::{ExecutionId, InstanceId, ScheduleId, ScheduleRunId, UserId};
use crate::repo::stmt;
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, FromQueryResult, TransactionTrait};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::Duration;

/// One scheduler replica, as its row in `schedulers` records it.
#[derive(Debug, Clone)]
pub struct Replica {
    pub id: String,
    /// How often it says it is alive; it counts as alive for two of these after the last.
    pub heartbeat: Duration,
}

impl Replica {
    /// Records a new replica, alive from now.
    pub async fn register(db: &DatabaseConnection, heartbeat: Duration) -> Result<Self, DbErr> {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "scheduler".into());
        let id = format!(
            "{host}-{}-{}",
            std::process::id(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let r = Self { id, heartbeat };
        db.execute_raw(stmt(
            "INSERT INTO schedulers (id, started_at, last_seen_at, expires_at) \
             VALUES ($1, now(), now(), now() + make_interval(secs => $2))",
            [r.id.clone().into(), r.horizon().into()],
        ))
        .await?;
        Ok(r)
    }

    /// Seconds after a heartbeat during which the replica counts as alive.
    fn horizon(&self) -> f64 {
        (self.heartbeat * 2).as_secs_f64().max(1.0)
    }

    /// Records that the replica stopped (on SIGTERM): ticks from now on are missed unless
    /// another replica is alive.
    pub async fn stop(&self, db: &DatabaseConnection) -> Result<(), DbErr> {
        db.execute_raw(stmt(
            "UPDATE schedulers SET stopped_at = now(), last_seen_at = now() WHERE id = $1",
            [self.id.clone().into()],
        ))
        .await?;
        Ok(())
    }
}

/// What the schedules look like to a replica between passes (one statement, which is
/// also its heartbeat).
#[derive(Debug, Clone, FromQueryResult)]
pub struct Probe {
    /// Postgres' clock.
    pub now: DateTime<Utc>,
    /// The earliest tick of any enabled schedule.
    pub next: Option<DateTime<Utc>>,
    /// Some schedule has ticks carried over an edit, or a buffered tick whose run ended.
    pub pending: bool,
    /// Schedules due now (at most 100,000 counted).
    pub due: i64,
    /// Whether this replica's row still exists.
    pub alive: bool,
}

impl Probe {
    /// Whether a pass has work.
    pub fn has_work(&self) -> bool {
        self.pending || self.next.is_some_and(|n| n <= self.now)
    }
}

/// A run of the schedule `s` that has not ended (SQL).
fn active() -> String {
    format!("e.status NOT IN {}", Status::ENDED_SQL)
}

impl Replica {
    /// The CTE `hb` that records a heartbeat (`$1` the replica's id, `$2` its horizon):
    /// `EXISTS (SELECT 1 FROM hb)` says whether its row still exists.
    pub(crate) const HEARTBEAT_CTE: &'static str = "WITH hb AS (UPDATE schedulers SET last_seen_at = now(), \
         expires_at = now() + make_interval(secs => $2) WHERE id = $1 RETURNING 1)";

    /// The values of [`Replica::HEARTBEAT_CTE`]'s `$1` and `$2`.
    pub(crate) fn heartbeat_values(&self) -> [sea_orm::Value; 2] {
        [self.id.clone().into(), self.horizon().into()]
    }
}

impl Probe {
    /// The columns of one SELECT after [`Replica::HEARTBEAT_CTE`] that make a probe.
    pub(crate) fn columns() -> String {
        format!(
            "now() AS now, \
               (SELECT min(next_run_at) FROM schedules WHERE enabled) AS next, \
               EXISTS (SELECT 1 FROM schedules s WHERE (s.buffered_for IS NOT NULL OR s.carried_ticks IS NOT NULL) \
                       AND s.enabled AND (s.carried_ticks IS NOT NULL OR NOT EXISTS \
                         (SELECT 1 FROM executions e WHERE e.schedule_id = s.id AND {}))) AS pending, \
               (SELECT count(*) FROM (SELECT 1 FROM schedules WHERE enabled AND next_run_at <= now() LIMIT 100000) d) AS due, \
               EXISTS (SELECT 1 FROM hb) AS alive",
            active()
        )
    }
}

/// Says the replica is alive and looks at what is due (after a wake-up or a pass; while
/// nothing happens, [`crate::reconcile::look`] does both once per interval).
pub async fn probe(db: &DatabaseConnection, replica: &Replica) -> Result<Probe, DbErr> {
    let sql = format!("{} SELECT {}", Replica::HEARTBEAT_CTE, Probe::columns());
    let p = Probe::find_by_statement(stmt(&sql, replica.heartbeat_values()))
        .one(db)
        .await?;
    p.ok_or_else(|| DbErr::RecordNotFound("the probe returned no row".into()))
}

/// A run a pass started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    pub execution_id: ExecutionId,
    pub schedule_id: ScheduleId,
    pub scheduled_for: DateTime<Utc>,
    /// Fired as it came due (not caught up after downtime, not from the buffer): its lag
    /// is the scheduler's.
    pub on_time: bool,
}

/// What one pass did.
#[derive(Debug, Default)]
pub struct FirePass {
    /// Schedules taken.
    pub taken: usize,
    pub started: Vec<Started>,
    /// Runs to cancel (`cancel_other`) after the commit, with their owner.
    pub cancels: Vec<(UserId, ExecutionId)>,
    /// Ticks recorded missed, per schedule.
    pub missed: Vec<(ScheduleId, i64)>,
    pub skipped: usize,
    pub buffered: usize,
    /// Fires whose run could not be made (recorded `invalid` with the reason).
    pub invalid: usize,
    /// Postgres' clock at the pass.
    pub now: Option<DateTime<Utc>>,
}

#[derive(Debug, FromQueryResult)]
struct DueRow {
    #[sea_orm(nested)]
    schedule: ScheduleRow,
    sql_query: String,
    wf_parameters: Value,
    wf_version: i32,
    instance_id: InstanceId,
    active: Value,
}

#[derive(Debug, FromQueryResult)]
struct Life {
    now: DateTime<Utc>,
    from_at: DateTime<Utc>,
    until_at: DateTime<Utc>,
}

/// The replicas' lives, after this one's heartbeat; and Postgres' clock.
async fn lives<C: ConnectionTrait>(
    txn: &C,
    replica: &Replica,
) -> Result<(Lives, DateTime<Utc>), DbErr> {
    let rows = Life::find_by_statement(stmt(
        "WITH hb AS (UPDATE schedulers SET last_seen_at = now(), expires_at = now() + make_interval(secs => $2) \
                     WHERE id = $1 RETURNING started_at) \
         SELECT now() AS now, started_at AS from_at, now() AS until_at FROM hb \
         UNION ALL \
         SELECT now(), started_at, coalesce(stopped_at, expires_at) FROM schedulers WHERE id <> $1",
        [replica.id.clone().into(), replica.horizon().into()],
    ))
    .all(txn)
    .await?;
    let now = match rows.first() {
        Some(r) => r.now,
        None => {
            let r = txn.query_one_raw(stmt("SELECT now() AS now", [])).await?;
            r.map(|r| r.try_get("", "now"))
                .transpose()?
                .unwrap_or_else(Utc::now)
        }
    };
    Ok((
        Lives(rows.into_iter().map(|r| (r.from_at, r.until_at)).collect()),
        now,
    ))
}

fn due_sql(which: &str) -> String {
    let cols: Vec<String> = COLUMNS
        .split(',')
        .map(|c| format!("s.{}", c.trim()))
        .collect();
    format!(
        "SELECT {}, v.sql_query, v.parameters AS wf_parameters, v.version AS wf_version, w.instance_id, \
           coalesce((SELECT jsonb_agg(e.id) FROM executions e WHERE e.schedule_id = s.id AND {}), '[]'::jsonb) AS active \
         FROM schedules s JOIN workflows w ON w.id = s.workflow_id AND w.deleted_at IS NULL \
         JOIN workflow_versions v ON v.workflow_id = w.id AND v.version = coalesce(s.workflow_version, w.version) \
         WHERE s.enabled AND {which} LIMIT $1 FOR UPDATE OF s SKIP LOCKED",
        cols.join(", "),
        active()
    )
}

/// Takes up to `limit` due schedules and fires them, in one transaction.
#[tracing::instrument(name = "schedule.fire", skip_all, fields(taken = tracing::field::Empty, started = tracing::field::Empty))]
pub async fn fire_due(
    db: &DatabaseConnection,
    replica: &Replica,
    limit: usize,
) -> Result<FirePass, DbErr> {
    let txn = db.begin().await?;
    let (lives, now) = lives(&txn, replica).await?;
    let mut rows = DueRow::find_by_statement(stmt(
        &due_sql("s.next_run_at <= now() ORDER BY s.next_run_at"),
        [(limit as i64).into()],
    ))
    .all(&txn)
    .await?;
    if rows.len() < limit {
        // A buffered tick whose run may have ended, or ticks carried over an edit.
        let more = DueRow::find_by_statement(stmt(
            &due_sql(
                "(s.buffered_for IS NOT NULL OR s.carried_ticks IS NOT NULL) AND coalesce(s.next_run_at > now(), true)",
            ),
            [((limit - rows.len()) as i64).into()],
        ))
        .all(&txn)
        .await?;
        rows.extend(more);
    }
    let mut pass = FirePass {
        taken: rows.len(),
        now: Some(now),
        ..FirePass::default()
    };
    let mut writes = Writes::default();
    for row in &rows {
        plan_one(row, now, &lives, &mut pass, &mut writes);
    }
    if !writes.runs.is_empty() {
        let records = records_of(&writes.runs);
        let written = insert_batch(&txn, records, now).await?;
        // A tick whose run exists already (it cannot, under the lock; but the key says so)
        // keeps that run and its history.
        writes
            .history
            .retain(|h| h.execution_id.is_none_or(|id| written.contains(&id)));
        pass.started.retain(|s| written.contains(&s.execution_id));
    }
    write_schedules(&txn, &writes.schedules).await?;
    if !pass.cancels.is_empty() {
        let ids: Vec<Value> = pass.cancels.iter().map(|(_, id)| json!(id)).collect();
        // Durable at once for runs at AMC (their next poll carries it out); a run a worker
        // holds right now is skipped here and cancelled after the commit.
        let sql = format!(
            "UPDATE executions SET cancel_requested_at = coalesce(cancel_requested_at, now()), updated_at = now() \
             WHERE id IN (SELECT id FROM executions WHERE id IN (SELECT jsonb_array_elements_text($1::jsonb)::uuid) \
                          AND status IN {} FOR UPDATE SKIP LOCKED)",
            Status::AT_AMC_SQL
        );
        txn.execute_raw(stmt(&sql, [Value::Array(ids).into()]))
            .await?;
    }
    write_history(&txn, &writes.history).await?;
    txn.commit().await?;
    let span = tracing::Span::current();
    span.record("taken", pass.taken);
    span.record("started", pass.started.len());
    Ok(pass)
}

#[derive(Debug, Default)]
struct Writes {
    runs: Vec<ExecutionRow>,
    history: Vec<HistoryWrite>,
    schedules: Vec<Value>,
}

#[derive(Debug)]
struct HistoryWrite {
    schedule_id: ScheduleId,
    scheduled_for: DateTime<Utc>,
    outcome: RunOutcome,
    execution_id: Option<ExecutionId>,
    missed_count: i64,
    error: Option<(&'static str, String)>,
}

/// Plans one schedule and adds what it writes.
fn plan_one(row: &DueRow, now: DateTime<Utc>, lives: &Lives, pass: &mut FirePass, w: &mut Writes) {
    let s = &row.schedule;
    let (Some(rule), Some(window)) = (s.rule(), s.window()) else {
        // Stored checked; a rule no longer readable (a croner change) stops the schedule
        // from firing rather than firing wrongly.
        tracing::warn!(schedule.id = %s.id, cron = %s.cron, "a stored schedule no longer parses; it does not fire");
        w.schedules.push(json!({"id": s.id, "next_run_at": null, "last_run_at": s.last_run_at, "buffered_for": null, "missed": 0}));
        return;
    };
    let active: Vec<ExecutionId> = serde_json::from_value(row.active.clone()).unwrap_or_default();
    let carried = s.carried();
    let state = State {
        rule: &rule,
        tz: s.tz(),
        overlap: s.overlap_policy,
        catch_up: s.catch_up(),
        next_run_at: s.next_run_at,
        last_run_at: s.last_run_at,
        buffered_for: s.buffered_for,
        carried: &carried,
        active: &active,
    };
    let p: Plan = plan::plan(&state, now, lives);
    let unchanged = p.starts.is_empty()
        && p.entries.is_empty()
        && p.next_run_at == s.next_run_at
        && p.buffered_for == s.buffered_for
        && carried.is_empty();
    if unchanged {
        return;
    }
    let defaults = &row.wf_parameters;
    for (t, on_time) in &p.starts {
        let resolved = window.resolve(*t, state.tz);
        let mut given = s.params();
        given.extend(window_params(&row.sql_query, &resolved));
        match render_run(&row.sql_query, defaults, &given) {
            Ok(rendered) => {
                let id = ExecutionId::new();
                let new = NewExecution {
                    user_id: s.user_id,
                    workflow_id: s.workflow_id,
                    workflow_version: row.wf_version,
                    instance_id: row.instance_id,
                    sql_query: rendered.sql_query,
                    parameters: rendered.parameters,
                    window: resolved,
                    triggered_by: TriggeredBy::Schedule,
                    idempotency: None,
                    links: Links {
                        schedule_id: Some(s.id),
                        scheduled_for: Some(*t),
                        collection_id: None,
                        batch_id: None,
                        collection_window: None,
                        retry_of: None,
                    },
                    trace: None,
                };
                w.runs.push(queued_row_of(id, &new, now));
                w.history.push(HistoryWrite {
                    schedule_id: s.id,
                    scheduled_for: *t,
                    outcome: RunOutcome::Started,
                    execution_id: Some(id),
                    missed_count: 1,
                    error: None,
                });
                pass.started.push(Started {
                    execution_id: id,
                    schedule_id: s.id,
                    scheduled_for: *t,
                    on_time: *on_time,
                });
            }
            Err(e) => {
                pass.invalid += 1;
                w.history.push(HistoryWrite {
                    schedule_id: s.id,
                    scheduled_for: *t,
                    outcome: RunOutcome::Invalid,
                    execution_id: None,
                    missed_count: 1,
                    error: Some(("invalid_parameters", e.to_string())),
                });
            }
        }
    }
    for e in &p.entries {
        match e.outcome {
            RunOutcome::SkippedOverlap => pass.skipped += 1,
            RunOutcome::Buffered => pass.buffered += 1,
            _ => {}
        }
        w.history.push(HistoryWrite {
            schedule_id: s.id,
            scheduled_for: e.scheduled_for,
            outcome: e.outcome,
            execution_id: None,
            missed_count: e.missed_count,
            error: None,
        });
    }
    if p.missed > 0 {
        pass.missed.push((s.id, p.missed));
    }
    pass.cancels
        .extend(p.cancel.iter().map(|id| (s.user_id, *id)));
    w.schedules.push(json!({
        "id": s.id,
        "next_run_at": p.next_run_at,
        "last_run_at": p.last_run_at,
        "buffered_for": p.buffered_for,
        "missed": p.missed,
    }));
}

/// Writes the history entries; a buffered tick's entry becomes `started` when it starts.
/// `fired_at` is the instant of writing (the last statement before the commit), so
/// `fired_at − scheduled_for` is a fire's lag.
async fn write_history<C: ConnectionTrait>(txn: &C, history: &[HistoryWrite]) -> Result<(), DbErr> {
    if history.is_empty() {
        return Ok(());
    }
    // One entry per tick in one statement (ON CONFLICT may not touch a row twice).
    let mut by_tick: HashMap<(ScheduleId, DateTime<Utc>), &HistoryWrite> = HashMap::new();
    for h in history {
        by_tick.insert((h.schedule_id, h.scheduled_for), h);
    }
    let records: Vec<Value> = by_tick
        .values()
        .map(|h| {
            json!({
                "id": ScheduleRunId::new(),
                "schedule_id": h.schedule_id,
                "scheduled_for": h.scheduled_for,
                "outcome": h.outcome,
                "execution_id": h.execution_id,
                "missed_count": h.missed_count,
                "error_code": h.error.as_ref().map(|e| e.0),
                "error_message": h.error.as_ref().map(|e| e.1.clone()),
            })
        })
        .collect();
    // The conflict target names the partial unique index by its predicate, which the
    // planner must see as a constant (a bound parameter would not infer the index once
    // the statement runs on a generic plan): the spelling comes from the type.
    let sql = format!(
        "INSERT INTO schedule_runs (id, schedule_id, scheduled_for, fired_at, outcome, execution_id, missed_count, \
           error_code, error_message) \
         SELECT t.id, t.schedule_id, t.scheduled_for, clock_timestamp(), t.outcome, t.execution_id, t.missed_count, \
           t.error_code, t.error_message \
         FROM jsonb_to_recordset($1::jsonb) AS t(id uuid, schedule_id uuid, scheduled_for timestamptz, outcome text, \
           execution_id uuid, missed_count bigint, error_code text, error_message text) \
         ON CONFLICT (schedule_id, scheduled_for) WHERE outcome <> '{triggered}' \
         DO UPDATE SET outcome = EXCLUDED.outcome, execution_id = EXCLUDED.execution_id, fired_at = EXCLUDED.fired_at, \
           error_code = EXCLUDED.error_code, error_message = EXCLUDED.error_message \
         WHERE schedule_runs.outcome = $2",
        triggered = RunOutcome::Triggered.as_str(),
    );
    txn.execute_raw(stmt(
        &sql,
        [Value::Array(records).into(), RunOutcome::Buffered.into()],
    ))
    .await?;
    Ok(())
}

async fn write_schedules<C: ConnectionTrait>(txn: &C, schedules: &[Value]) -> Result<(), DbErr> {
    if schedules.is_empty() {
        return Ok(());
    }
    txn.execute_raw(stmt(
        "UPDATE schedules s SET next_run_at = t.next_run_at, last_run_at = t.last_run_at, \
           buffered_for = t.buffered_for, carried_ticks = NULL, missed_total = s.missed_total + t.missed \
         FROM jsonb_to_recordset($1::jsonb) AS t(id uuid, next_run_at timestamptz, last_run_at timestamptz, \
           buffered_for timestamptz, missed bigint) \
         WHERE s.id = t.id",
        [Value::Array(schedules.to_vec()).into()],
    ))
    .await?;
    Ok(())
}

#[derive(Debug, FromQueryResult)]
struct Ended {
    paused_now: bool,
    buffered: bool,
    #[sea_orm(nested)]
    schedule: ScheduleRow,
}

/// What the end of one of a schedule's runs does to it, in the transaction that ends the
/// run: a failure counts towards `pause_after_failures` (reaching it pauses the schedule
/// with its reason and records `schedule.paused`), a success resets the count, a
/// cancellation changes nothing. A tick buffered behind the run wakes the schedulers.
pub(crate) async fn on_run_ended<C: ConnectionTrait>(
    txn: &C,
    schedule: ScheduleId,
    status: Status,
) -> Result<(), DbErr> {
    if status == Status::Cancelled {
        txn.execute_raw(stmt(
            "SELECT pg_notify($2, '') FROM schedules WHERE id = $1 AND enabled AND buffered_for IS NOT NULL",
            [schedule.into(), super::CHANNEL.into()],
        ))
        .await?;
        return Ok(());
    }
    let failed = status == Status::Failed;
    let cols: Vec<String> = COLUMNS
        .split(',')
        .map(|c| format!("s.{}", c.trim()))
        .collect();
    let pausing = "(s.enabled AND $2 AND s.pause_after_failures IS NOT NULL \
                   AND s.consecutive_failures + 1 >= s.pause_after_failures)";
    let sql = format!(
        "WITH old AS (SELECT id, enabled FROM schedules WHERE id = $1 FOR UPDATE) \
         UPDATE schedules s SET \
           consecutive_failures = CASE WHEN $2 THEN s.consecutive_failures + 1 ELSE 0 END, \
           enabled = s.enabled AND NOT {pausing}, \
           paused_reason = CASE WHEN {pausing} \
             THEN format('paused after %s consecutive failed runs', s.consecutive_failures + 1) ELSE s.paused_reason END, \
           next_run_at = CASE WHEN {pausing} THEN NULL ELSE s.next_run_at END, \
           buffered_for = CASE WHEN {pausing} THEN NULL ELSE s.buffered_for END, \
           carried_ticks = CASE WHEN {pausing} THEN NULL ELSE s.carried_ticks END, \
           updated_at = CASE WHEN {pausing} THEN now() ELSE s.updated_at END \
         FROM old WHERE s.id = old.id \
         RETURNING old.enabled AND NOT s.enabled AS paused_now, s.buffered_for IS NOT NULL AS buffered, {}",
        cols.join(", ")
    );
    let Some(ended) = Ended::find_by_statement(stmt(&sql, [schedule.into(), failed.into()]))
        .one(txn)
        .await?
    else {
        // The schedule was deleted; its runs stay.
        return Ok(());
    };
    if ended.paused_now {
        crate::event::record(
            txn,
            crate::event::NewEvent {
                user: ended.schedule.user_id,
                event_type: crate::event::EventType::SchedulePaused,
                subject: ended.schedule.id.into(),
                payload: ended.schedule.public_json(),
            },
        )
        .await?;
    } else if ended.buffered && ended.schedule.enabled {
        txn.execute_raw(stmt("SELECT pg_notify($1, '')", [super::CHANNEL.into()]))
            .await?;
    }
    Ok(())
}
