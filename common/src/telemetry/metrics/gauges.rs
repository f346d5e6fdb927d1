//! The shared-state gauges ([`StateMetrics`]): what the scheduler's metrics duty reads of
//! Postgres, in one statement, and of the queues ([`queue::Inspector`], one Redis script
//! call), and how it sets the series.
//!
//! Per instance, the busiest [`INSTANCE_LABELS`] instances with activity (runs submitting,
//! running or queued) get a series of their own; the rest are summed under
//! `instance_id="other"`, so the label set stays bounded however many instances exist.
//! Why a queued run waits is decided as `execution::with_waiting` decides it for one run.

use super::{InstanceLabels, QueueLabels, StateMetrics, StatusLabels, WaitingLabels};
use crate::collection::{CollectionStatus, WindowStatus};
use crate::event::DeliveryStatus;
use crate::execution::{Status, WaitingReason};
use crate::jobs::{ALL_QUEUES, DeliverJob, StepKind, SubmitJob};
use crate::repo::stmt;
use queue::{Job, QueueSnapshot};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, QueryResult};
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// Instances with a series of their own; the others are summed under [`OTHER`].
pub const INSTANCE_LABELS: usize = 500;
/// The `instance_id` of the instances past [`INSTANCE_LABELS`].
pub const OTHER: &str = "other";
/// A worker counts as alive while its heartbeat (every 2 s) is this fresh.
pub const WORKER_ALIVE_WITHIN: Duration = Duration::from_secs(10);

/// What one look at Postgres found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SharedState {
    /// Rows of `dead_jobs` per queue.
    pub dead: HashMap<String, i64>,
    /// Runs submitting or running, per instance label (its UUID, or [`OTHER`]).
    pub slots: Vec<(String, i64)>,
    /// Queued runs per instance label and reason.
    pub waiting: Vec<(String, WaitingReason, i64)>,
    /// Work that can run now, by queue (see `runnable_jobs`).
    pub runnable: HashMap<&'static str, i64>,
    /// Windows of open collections by status.
    pub windows: HashMap<WindowStatus, i64>,
    /// Open collections by status.
    pub collections: HashMap<CollectionStatus, i64>,
    pub disabled_endpoints: i64,
    pub workers_alive: i64,
}

/// The statement: `$1` the instance label bound, `$2` the heartbeat freshness (seconds).
///
/// `act`: slots in use per instance; `queued`: queued runs with their collection's
/// status; `inst`: each instance with activity, its caps and whether its daily quota is
/// used; `waiting`: queued runs by instance and reason (in `with_waiting`'s order);
/// `ranked`: the instance label; `admissible`: per account, queued runs that free slots
/// admit now (each instance's free slots, then the account's).
fn sql() -> String {
    format!(
        "WITH act AS ( \
           SELECT instance_id, count(*) AS active, count(*) FILTER (WHERE collection_id IS NOT NULL) AS windows \
           FROM executions WHERE status IN ('{submitting}', '{running}') GROUP BY instance_id \
         ), queued AS ( \
           SELECT e.instance_id, e.collection_id, e.next_check_at, c.status AS collection_status \
           FROM executions e LEFT JOIN collections c ON c.id = e.collection_id WHERE e.status = '{queued}' \
         ), inst AS ( \
           SELECT i.id, i.account_id, i.max_concurrent_executions AS cap, {reserve} AS reserve, \
             a.max_concurrent_executions AS account_cap, \
             coalesce(i.daily_execution_quota IS NOT NULL AND {used_today} >= i.daily_execution_quota, false) AS quota_used, \
             coalesce(act.active, 0) AS active, coalesce(act.windows, 0) AS windows \
           FROM amc_instances i JOIN amc_accounts a ON a.id = i.account_id LEFT JOIN act ON act.instance_id = i.id \
           WHERE i.id IN (SELECT instance_id FROM act UNION SELECT instance_id FROM queued) \
         ), acc AS ( \
           SELECT account_id, sum(active) AS active FROM inst GROUP BY account_id \
         ), waiting AS ( \
           SELECT q.instance_id, CASE \
               WHEN q.next_check_at > now() THEN '{not_before}' \
               WHEN q.collection_status = '{paused}' THEN '{collection_paused}' \
               WHEN inst.quota_used THEN '{daily_quota}' \
               WHEN inst.active >= inst.cap THEN '{instance_cap}' \
               WHEN acc.active >= inst.account_cap THEN '{account_cap}' \
               WHEN q.collection_id IS NOT NULL AND inst.windows >= inst.cap - inst.reserve THEN '{collection_reserve}' \
               ELSE '{behind}' END AS reason, count(*) AS n \
           FROM queued q JOIN inst ON inst.id = q.instance_id JOIN acc ON acc.account_id = inst.account_id \
           GROUP BY 1, 2 \
         ), ranked AS ( \
           SELECT inst.id, CASE WHEN row_number() OVER (ORDER BY inst.active + coalesce(w.n, 0) DESC, inst.id) <= $1 \
             THEN inst.id::text ELSE '{other}' END AS label \
           FROM inst LEFT JOIN (SELECT instance_id, sum(n) AS n FROM waiting GROUP BY 1) w ON w.instance_id = inst.id \
         ), admissible AS ( \
           SELECT greatest(max(inst.account_cap) - max(acc.active), 0) AS account_free, \
             sum(least(w.n, greatest(inst.cap - inst.active, 0))) AS n \
           FROM waiting w JOIN inst ON inst.id = w.instance_id JOIN acc ON acc.account_id = inst.account_id \
           WHERE w.reason = '{behind}' GROUP BY inst.account_id \
         ) SELECT \
           (SELECT coalesce(jsonb_object_agg(queue, n), '{{}}'::jsonb) \
              FROM (SELECT queue, count(*) AS n FROM dead_jobs GROUP BY queue) d) AS dead, \
           (SELECT coalesce(jsonb_agg(jsonb_build_array(label, n)), '[]'::jsonb) \
              FROM (SELECT r.label, sum(inst.active)::bigint AS n FROM ranked r JOIN inst ON inst.id = r.id GROUP BY r.label) s) AS slots, \
           (SELECT coalesce(jsonb_agg(jsonb_build_array(label, reason, n)), '[]'::jsonb) \
              FROM (SELECT r.label, w.reason, sum(w.n)::bigint AS n FROM waiting w JOIN ranked r ON r.id = w.instance_id GROUP BY 1, 2) s) AS waiting, \
           (SELECT coalesce(sum(least(n, account_free)), 0)::bigint FROM admissible) AS admissible, \
           (SELECT coalesce(jsonb_object_agg(status, n), '{{}}'::jsonb) \
              FROM (SELECT status, count(*) AS n FROM executions WHERE status IN {at_amc} AND next_check_at <= now() GROUP BY status) s) AS due_steps, \
           (SELECT count(*) FROM webhook_deliveries WHERE status = '{pending}' AND next_attempt_at <= now()) AS due_deliveries, \
           (SELECT coalesce(jsonb_object_agg(status, n), '{{}}'::jsonb) \
              FROM (SELECT w.status, count(*) AS n FROM collection_windows w JOIN collections c ON c.id = w.collection_id \
                    WHERE c.completed_at IS NULL GROUP BY w.status) s) AS windows, \
           (SELECT coalesce(jsonb_object_agg(status, n), '{{}}'::jsonb) \
              FROM (SELECT status, count(*) AS n FROM collections WHERE completed_at IS NULL GROUP BY status) s) AS collections, \
           (SELECT count(*) FROM webhook_endpoints WHERE NOT enabled) AS disabled_endpoints, \
           (SELECT count(*) FROM workers WHERE stopped_at IS NULL \
              AND last_heartbeat_at > now() - make_interval(secs => $2)) AS workers_alive",
        submitting = Status::Submitting,
        running = Status::Running,
        queued = Status::Queued,
        at_amc = Status::AT_AMC_SQL,
        reserve = crate::execution::RESERVE_SQL,
        used_today = crate::execution::USED_TODAY_SQL,
        not_before = WaitingReason::NotBefore,
        paused = CollectionStatus::Paused,
        collection_paused = WaitingReason::CollectionPaused,
        daily_quota = WaitingReason::DailyQuota,
        instance_cap = WaitingReason::InstanceCap,
        account_cap = WaitingReason::AccountCap,
        collection_reserve = WaitingReason::CollectionReserve,
        behind = WaitingReason::QueuedBehindOlderRuns,
        other = OTHER,
        pending = DeliveryStatus::Pending,
    )
}

fn json<T: serde::de::DeserializeOwned>(r: &QueryResult, column: &str) -> Result<T, DbErr> {
    let v: serde_json::Value = r.try_get("", column)?;
    serde_json::from_value(v).map_err(|e| DbErr::Type(format!("{column}: {e}")))
}

/// Reads the shared state in one statement.
pub async fn read(db: &DatabaseConnection) -> Result<SharedState, DbErr> {
    let r = db
        .query_one_raw(stmt(
            &sql(),
            [
                (INSTANCE_LABELS as i64).into(),
                WORKER_ALIVE_WITHIN.as_secs_f64().into(),
            ],
        ))
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("the gauges' statement returned no row".into()))?;
    let waiting: Vec<(String, String, i64)> = json(&r, "waiting")?;
    let due_steps: HashMap<String, i64> = json(&r, "due_steps")?;
    let mut runnable: HashMap<&'static str, i64> = ALL_QUEUES.iter().map(|q| (*q, 0)).collect();
    *runnable.entry(SubmitJob::QUEUE).or_default() += r.try_get::<i64>("", "admissible")?;
    *runnable.entry(DeliverJob::QUEUE).or_default() += r.try_get::<i64>("", "due_deliveries")?;
    for (status, n) in due_steps {
        if let Some(kind) = status.parse::<Status>().ok().and_then(StepKind::of_status) {
            *runnable.entry(kind.queue()).or_default() += n;
        }
    }
    Ok(SharedState {
        dead: json(&r, "dead")?,
        slots: json(&r, "slots")?,
        waiting: waiting
            .into_iter()
            .filter_map(|(label, reason, n)| Some((label, reason.parse().ok()?, n)))
            .collect(),
        runnable,
        windows: parse_keys(json(&r, "windows")?),
        collections: parse_keys(json(&r, "collections")?),
        disabled_endpoints: r.try_get("", "disabled_endpoints")?,
        workers_alive: r.try_get("", "workers_alive")?,
    })
}

fn parse_keys<K: std::str::FromStr + Eq + std::hash::Hash>(
    m: HashMap<String, i64>,
) -> HashMap<K, i64> {
    m.into_iter()
        .filter_map(|(k, n)| Some((k.parse().ok()?, n)))
        .collect()
}

/// The instance label sets the last refresh set.
#[derive(Debug, Default)]
pub struct Seen {
    slots: HashSet<InstanceLabels>,
    waiting: HashSet<WaitingLabels>,
}

fn queue_label(name: &str) -> Option<&'static str> {
    ALL_QUEUES.iter().find(|q| **q == name).copied()
}

impl StateMetrics {
    /// Sets the queue series from a snapshot taken at `now_ms` (unix ms).
    pub fn record_queues(&self, snapshot: &[QueueSnapshot], now_ms: u64) {
        for s in snapshot {
            let Some(queue) = queue_label(&s.queue) else {
                continue;
            };
            let l = QueueLabels { queue };
            self.depth.get_or_create(&l).set(gauge(s.depth));
            self.delayed.get_or_create(&l).set(gauge(s.delayed));
            self.pending.get_or_create(&l).set(gauge(s.pending));
            self.oldest_age
                .get_or_create(&l)
                .set(s.oldest_age(now_ms).as_secs_f64());
        }
    }

    /// Sets every series read from Postgres; instance series no longer present go.
    pub fn record_state(&self, s: &SharedState) {
        for queue in ALL_QUEUES {
            let l = QueueLabels { queue };
            self.dead
                .get_or_create(&l)
                .set(s.dead.get(queue).copied().unwrap_or(0));
            self.runnable
                .get_or_create(&l)
                .set(s.runnable.get(queue).copied().unwrap_or(0));
        }
        for w in WindowStatus::ALL {
            let n = s.windows.get(&w).copied().unwrap_or(0);
            self.windows
                .get_or_create(&StatusLabels { status: w.as_str() })
                .set(n);
        }
        for c in CollectionStatus::ALL.into_iter().filter(|c| c.is_open()) {
            let n = s.collections.get(&c).copied().unwrap_or(0);
            self.collections
                .get_or_create(&StatusLabels { status: c.as_str() })
                .set(n);
        }
        self.disabled_endpoints.set(s.disabled_endpoints);
        self.workers_alive.set(s.workers_alive);
        let slots: HashMap<InstanceLabels, i64> = s
            .slots
            .iter()
            .map(|(id, n)| {
                (
                    InstanceLabels {
                        instance_id: id.clone(),
                    },
                    *n,
                )
            })
            .collect();
        let waiting: HashMap<WaitingLabels, i64> = s
            .waiting
            .iter()
            .map(|(id, reason, n)| {
                let l = WaitingLabels {
                    instance_id: id.clone(),
                    reason: reason.as_str(),
                };
                (l, *n)
            })
            .collect();
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        replace(&self.slots, &mut seen.slots, slots);
        replace(&self.waiting, &mut seen.waiting, waiting);
    }
}

/// Sets `now`'s series of `family` and removes those of `seen` not among them.
fn replace<L>(
    family: &prometheus_client::metrics::family::Family<
        L,
        prometheus_client::metrics::gauge::Gauge,
    >,
    seen: &mut HashSet<L>,
    now: HashMap<L, i64>,
) where
    L: Clone + std::hash::Hash + Eq + prometheus_client::encoding::EncodeLabelSet + std::fmt::Debug,
{
    for gone in seen.iter().filter(|l| !now.contains_key(*l)) {
        family.remove(gone);
    }
    seen.clear();
    for (l, n) in now {
        family.get_or_create(&l).set(n);
        seen.insert(l);
    }
}

fn gauge(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::metrics::render;
    use prometheus_client::registry::Registry;

    #[test]
    fn the_statement_spells_its_names_through_the_types() {
        let sql = sql();
        assert!(sql.contains("status IN ('submitting', 'running')"), "{sql}");
        assert!(sql.contains("ELSE 'queued_behind_older_runs'"), "{sql}");
        assert_eq!(
            sql.matches('{').count(),
            sql.matches("'{}'::jsonb").count(),
            "an unformatted placeholder: {sql}"
        );
    }

    #[test]
    fn instances_gone_lose_their_series() {
        let mut r = Registry::default();
        let m = StateMetrics::register(&mut r);
        let mut s = SharedState {
            slots: vec![("a".into(), 2), ("b".into(), 1)],
            waiting: vec![("a".into(), WaitingReason::InstanceCap, 3)],
            ..SharedState::default()
        };
        m.record_state(&s);
        let text = render(&r);
        assert!(
            text.contains(r#"instance_slots_in_use{instance_id="b"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"instance_waiting_runs{instance_id="a",reason="instance_cap"} 3"#),
            "{text}"
        );
        assert!(
            text.contains(r#"queue_dead_jobs{queue="webhook.deliver"} 0"#),
            "{text}"
        );
        assert!(
            text.contains(r#"collections_open{status="paused"} 0"#),
            "{text}"
        );
        s.slots = vec![("a".into(), 1)];
        s.waiting.clear();
        m.record_state(&s);
        let text = render(&r);
        assert!(
            text.contains(r#"instance_slots_in_use{instance_id="a"} 1"#),
            "{text}"
        );
        assert!(!text.contains(r#"instance_id="b""#), "{text}");
        assert!(!text.contains("instance_waiting_runs{"), "{text}");
    }

    #[test]
    fn queue_series_come_from_the_snapshot() {
        let mut r = Registry::default();
        let m = StateMetrics::register(&mut r);
        let snap = QueueSnapshot {
            queue: SubmitJob::QUEUE.into(),
            depth: 4,
            pending: 1,
            delayed: 2,
            oldest_ready_ms: Some(1_000),
            earliest_due_ms: None,
        };
        m.record_queues(&[snap], 3_500);
        let text = render(&r);
        assert!(
            text.contains(r#"queue_depth{queue="execution.submit"} 4"#),
            "{text}"
        );
        assert!(
            text.contains(r#"queue_pending{queue="execution.submit"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"queue_delayed{queue="execution.submit"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"queue_oldest_job_age_seconds{queue="execution.submit"} 2.5"#),
            "{text}"
        );
    }
}
