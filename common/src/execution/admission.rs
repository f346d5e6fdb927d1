//! Capacity admitted in Postgres (DESIGN inv. 4): per-instance cap, per-account cap and
//! the optional per-instance daily quota, all under the account row's lock, so any
//! number of workers admit correctly and queued runs start oldest first.

use super::steps::{DueStep, due_steps_of};
use super::store::{Move, transition_many_in};
use super::{ExecutionRow, Status, now_micros};
use crate::ids::{AccountId, ExecutionId, InstanceId};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement, TransactionTrait};
use std::collections::HashMap;
use std::time::Duration;
use uuid::Uuid;

/// The account an instance belongs to.
pub async fn account_of_instance<C: ConnectionTrait>(
    conn: &C,
    instance: InstanceId,
) -> Result<Option<AccountId>, DbErr> {
    let r = conn
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT account_id FROM amc_instances WHERE id = $1",
            [instance.0.into()],
        ))
        .await?;
    r.map(|r| r.try_get::<AccountId>("", "account_id"))
        .transpose()
}

struct InstanceCaps {
    cap: i64,
    active: i64,
    /// Slots collection windows may hold together: the cap minus the reserve.
    window_cap: i64,
    active_windows: i64,
    quota_left: Option<i64>,
}

/// Runs instance `i` started today (its zone's day), counted only when it has a daily
/// quota (a count of its whole history otherwise, on every admission pass).
pub(crate) const USED_TODAY_SQL: &str = "CASE WHEN i.daily_execution_quota IS NULL THEN 0 ELSE \
    (SELECT count(*) FROM executions e WHERE e.instance_id = i.id AND e.submitting_at >= \
       (date_trunc('day', now() AT TIME ZONE i.time_zone) AT TIME ZONE i.time_zone)) END";

/// The slots of an instance collection windows never take, as SQL over `i`
/// (`collection_reserve`, by default min(2, cap − 1)).
pub(crate) const RESERVE_SQL: &str =
    "coalesce(i.collection_reserve, least(2, i.max_concurrent_executions - 1))";

/// How an admission pass hands its runs to their submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admit {
    /// The most runs the pass admits (besides the caps).
    pub limit: usize,
    /// How long each admitted run is leased to the admitting worker.
    pub lease: Duration,
}

/// Moves as many of the account's oldest queued runs to `submitting` as its caps (and
/// `admit.limit`) allow. Each admitted run is leased to the caller in the same move (its
/// `next_check_at` is the lease, until now + `admit.lease`) and records that its
/// submission begins (`submit_started_at`), so the caller sends it to AMC with no further
/// move of its row. A caller that dies first leaves the lease to run out: the reconciler
/// then hands the run to a submit step, which finds the submission in doubt and asks AMC
/// before creating it. Returns the admitted runs, oldest first, ready to submit.
pub async fn admit_account(
    db: &DatabaseConnection,
    account: AccountId,
    admit: Admit,
) -> Result<Vec<DueStep>, DbErr> {
    let txn = db.begin().await?;
    let Some(acc) = txn
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT max_concurrent_executions FROM amc_accounts WHERE id = $1 FOR UPDATE",
            [account.0.into()],
        ))
        .await?
    else {
        return Ok(Vec::new());
    };
    let account_cap: i32 = acc.try_get("", "max_concurrent_executions")?;
    let rows = txn
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            format!("SELECT i.id, i.max_concurrent_executions AS cap, i.daily_execution_quota AS quota, {RESERVE_SQL} AS reserve, \
               (SELECT count(*) FROM executions e WHERE e.instance_id = i.id AND e.status IN ('submitting', 'running')) AS active_runs, \
               (SELECT count(*) FROM executions e WHERE e.instance_id = i.id AND e.status IN ('submitting', 'running') \
                  AND e.collection_id IS NOT NULL) AS active_windows, \
               {USED_TODAY_SQL} AS used_today \
             FROM amc_instances i WHERE i.account_id = $1"),
            [account.0.into()],
        ))
        .await?;
    let mut caps: HashMap<Uuid, InstanceCaps> = HashMap::new();
    let mut account_active = 0i64;
    for r in rows {
        let active: i64 = r.try_get("", "active_runs")?;
        let quota: Option<i32> = r.try_get("", "quota")?;
        let used: i64 = r.try_get("", "used_today")?;
        account_active += active;
        let cap = i64::from(r.try_get::<i32>("", "cap")?);
        let reserve = i64::from(r.try_get::<i32>("", "reserve")?);
        caps.insert(
            r.try_get("", "id")?,
            InstanceCaps {
                cap,
                active,
                window_cap: cap - reserve,
                active_windows: r.try_get("", "active_windows")?,
                quota_left: quota.map(|q| i64::from(q) - used),
            },
        );
    }
    let mut account_free = i64::from(account_cap) - account_active;
    let mut room = i64::try_from(admit.limit).unwrap_or(i64::MAX);
    if account_free <= 0 || room <= 0 {
        txn.commit().await?;
        return Ok(Vec::new());
    }
    // Interactive runs (every run of no collection: `api`, `schedule`, `batch`) first,
    // oldest first; then collection windows round-robin across the collections (each
    // one's oldest first), so none waits for another to finish. Windows
    // of a collection that is not running (paused, cancelled) wait.
    let candidates = txn
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            format!(
                "SELECT e.id, e.instance_id, o.windowed FROM executions e JOIN ( \
                   SELECT q.id, q.created_at, q.collection_id IS NOT NULL AS windowed, \
                     CASE WHEN q.collection_id IS NULL THEN 0 \
                          ELSE row_number() OVER (PARTITION BY q.collection_id ORDER BY q.created_at, q.id) END AS turn \
                   FROM executions q JOIN amc_instances i ON i.id = q.instance_id \
                   WHERE i.account_id = $1 AND q.status = 'queued' \
                     AND (q.next_check_at IS NULL OR q.next_check_at <= now()) \
                     AND (q.collection_id IS NULL OR EXISTS (SELECT 1 FROM collections c \
                          WHERE c.id = q.collection_id AND c.status = '{running}'))) o ON o.id = e.id \
                 ORDER BY o.windowed, o.turn, o.created_at, o.id LIMIT $2 FOR UPDATE OF e SKIP LOCKED",
                running = crate::collection::CollectionStatus::Running
            ),
            [account.0.into(), (account_free.min(room) * 4 + 100).into()],
        ))
        .await?;
    // Which candidates fit is decided here; then they all move with one batched
    // transition (their rows are locked above, so each of them moves).
    let now = now_micros();
    let until = now + chrono::Duration::from_std(admit.lease).unwrap_or_default();
    let mut chosen = Vec::new();
    for c in candidates {
        if account_free <= 0 || room <= 0 {
            break;
        }
        let id: Uuid = c.try_get("", "id")?;
        let instance: Uuid = c.try_get("", "instance_id")?;
        let windowed: bool = c.try_get("", "windowed")?;
        let Some(ic) = caps.get_mut(&instance) else {
            continue;
        };
        if ic.active >= ic.cap
            || ic.quota_left.is_some_and(|q| q <= 0)
            || windowed && ic.active_windows >= ic.window_cap
        {
            continue;
        }
        ic.active += 1;
        if windowed {
            ic.active_windows += 1;
        }
        if let Some(q) = ic.quota_left.as_mut() {
            *q -= 1;
        }
        account_free -= 1;
        room -= 1;
        chosen.push(Move {
            id: ExecutionId(id),
            due: None,
            next: until,
            amc_execution_id: None,
            attempt: None,
            submit_started: Some(now),
        });
    }
    let moved = transition_many_in(&txn, Status::Queued, Status::Submitting, &chosen, |_| {
        "admitted: a slot is free".to_owned()
    })
    .await?;
    txn.commit().await?;
    // In the order chosen (oldest first), as their submissions go out.
    let mut moved: HashMap<ExecutionId, ExecutionRow> =
        moved.into_iter().map(|r| (r.id, r)).collect();
    let admitted: Vec<ExecutionRow> = chosen.iter().filter_map(|m| moved.remove(&m.id)).collect();
    due_steps_of(db, admitted).await
}
