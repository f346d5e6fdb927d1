//! The simulator's in-memory state behind one mutex, and the operations routes call.

mod catalog;
mod run;
mod timeline;
mod tokens;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use uuid::Uuid;

pub use catalog::{Catalog, CatalogError};
pub use run::{Fate, Run, Status};
pub use timeline::Instance;
pub use tokens::{LwaError, TokenRequest, Tokens};

use crate::clock::Clock;
use crate::config::SimConfig;
use crate::faults::{
    Draw, FailReason, FaultPlan, FaultRoute, FaultSubject, FaultsDoc, HttpFault, RuleHits, draw,
};
use crate::fixtures::{AmcAccount, AmcInstance};
use crate::validate::CreateSpec;

/// Settings that the admin API may change at run time.
#[derive(Debug, Clone)]
pub struct Settings {
    pub run_duration: Duration,
    pub token_ttl: Duration,
    pub max_running: usize,
    pub expired_token_status: u16,
    pub unavailable_status: u16,
    pub adhoc_max_bytes: usize,
}

/// Everything mutable.
#[derive(Debug, Default)]
pub struct SimState {
    pub instances: HashMap<String, Instance>,
    /// Execution id → (instance id, index in that instance's runs).
    pub index: HashMap<Uuid, (String, usize)>,
    /// Every execution id in creation order.
    pub order: Vec<Uuid>,
    pub tokens: Tokens,
    pub unknown_instances: HashSet<String>,
    /// Advertiser (entity) ids answered 403.
    pub unknown_advertisers: HashSet<String>,
    /// Saved workflows and schedules, by instance.
    pub catalogs: HashMap<String, Catalog>,
    /// What `GET /amc/accounts` and `GET /amc/instances` list.
    pub accounts: Vec<AmcAccount>,
    pub directory: Vec<AmcInstance>,
    pub token_exchanges: u64,
    pub creates: u64,
    pub cancels: u64,
    /// Saved workflows created, updated and deleted (answered 200).
    pub workflow_creates: u64,
    pub workflow_updates: u64,
    pub workflow_deletes: u64,
    pub hold_next_create: bool,
    pub held: Vec<oneshot::Sender<()>>,
    /// Attempts per (route, key), for deterministic fault draws.
    pub attempts: HashMap<(FaultRoute, String), u64>,
    /// The fault plan in force and the seed of its draws.
    pub faults: FaultPlan,
    pub fault_seed: u64,
    /// Requests each limited rule (`match` / `times`) has applied to.
    pub rule_hits: RuleHits,
    /// Injected faults by kind.
    pub faults_injected: BTreeMap<String, u64>,
    /// Token exchange attempts by refresh token.
    pub exchanges_by_refresh: BTreeMap<String, u64>,
    /// Valid create requests received, by request key.
    pub submissions: HashMap<String, u64>,
    /// Runs created, by request key.
    pub created_by_key: HashMap<String, u64>,
    /// Result files set through the admin API, by name: a run whose SQL contains
    /// `sim_result=<name>` serves that CSV, byte for byte, as its one part.
    pub canned_results: HashMap<String, bytes::Bytes>,
}

/// Why a cancel was refused.
#[derive(Debug)]
pub enum CancelError {
    NotFound,
    Terminal(Status),
}

/// The shared simulator: fixed configuration, clock, and the locked state.
#[derive(Debug)]
pub struct Sim {
    pub cfg: SimConfig,
    pub clock: Arc<dyn Clock>,
    pub base_url: String,
    settings: Mutex<Settings>,
    state: Mutex<SimState>,
}

impl Sim {
    /// A fresh simulator serving at `base_url`.
    pub fn new(cfg: SimConfig, clock: Arc<dyn Clock>, base_url: String) -> Self {
        let settings = Settings {
            run_duration: cfg.run_duration,
            token_ttl: cfg.token_ttl,
            max_running: cfg.max_running,
            expired_token_status: cfg.expired_token_status,
            unavailable_status: cfg.unavailable_status,
            adhoc_max_bytes: cfg.adhoc_max_bytes,
        };
        Self {
            clock,
            base_url,
            settings: Mutex::new(settings),
            state: Mutex::new(SimState {
                faults: cfg.faults.clone(),
                fault_seed: cfg.seed,
                unknown_advertisers: cfg.unknown_advertisers.iter().cloned().collect(),
                accounts: cfg.accounts.clone(),
                directory: cfg.instances.clone(),
                ..SimState::default()
            }),
            cfg,
        }
    }

    /// The current run-time settings.
    pub fn settings(&self) -> Settings {
        self.settings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Changes settings after playing every timeline up to now under the old ones.
    pub fn update_settings(&self, change: impl FnOnce(&mut Settings)) {
        let mut st = self.lock();
        self.advance_all(&mut st);
        change(&mut self.settings.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// Locks the state (a poisoned lock is recovered: the state stays usable).
    pub fn lock(&self) -> MutexGuard<'_, SimState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Exchanges a refresh token; counts every attempt.
    pub fn exchange(&self, req: &TokenRequest) -> Result<(String, String, u64), LwaError> {
        let now = self.clock.now();
        let ttl = self.settings().token_ttl;
        let expires_at = chrono::Duration::from_std(ttl)
            .ok()
            .and_then(|d| now.checked_add_signed(d))
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        let mut st = self.lock();
        st.token_exchanges += 1;
        let refresh = req.refresh_token.clone().unwrap_or_default();
        *st.exchanges_by_refresh.entry(refresh).or_insert(0) += 1;
        let client = tokens::Client {
            id: &self.cfg.client_id,
            secret: &self.cfg.client_secret,
        };
        let (a, r) = st.tokens.exchange(req, &client, now, expires_at)?;
        Ok((a, r, ttl.as_secs()))
    }

    /// True when the bearer token is currently accepted.
    pub fn bearer_ok(&self, bearer: &str) -> bool {
        self.lock().tokens.is_valid(bearer, self.clock.now())
    }

    /// Creates a PENDING run for request `key` (see [`request_key`]), drawing its run-level
    /// faults; returns its JSON and, when the answer must be held (`hold`, or the admin's
    /// hold-next-create), a receiver that completes on release.
    pub fn create(
        &self,
        instance: &str,
        spec: CreateSpec,
        key: &str,
        hold: bool,
    ) -> (Value, Option<oneshot::Receiver<()>>) {
        let now = self.clock.now();
        let s = self.settings();
        let mut st = self.lock();
        let mut run = Run::new(instance, spec, now);
        let ordinal = st.created_by_key.entry(key.to_owned()).or_insert(0);
        run.fault_key = format!("{key}#{ordinal}");
        *ordinal += 1;
        run.request_key = key.to_owned();
        let subject = RunSubject::of(&run.spec);
        run.fate = self.draw_fate(&mut st, &run.fault_key, &subject.as_subject());
        let id = run.id;
        let inst = st.instances.entry(instance.to_owned()).or_default();
        inst.advance(now, s.max_running, s.run_duration);
        let idx = inst.push(run);
        // The answer says PENDING; a free slot is taken at the same instant, just after.
        let body = inst.runs[idx].to_json(false);
        inst.advance(now, s.max_running, s.run_duration);
        st.index.insert(id, (instance.to_owned(), idx));
        st.order.push(id);
        st.creates += 1;
        let hold = (std::mem::take(&mut st.hold_next_create) || hold).then(|| {
            let (tx, rx) = oneshot::channel();
            st.held.push(tx);
            rx
        });
        (body, hold)
    }

    /// The run-level faults of the run with fault key `key`, created by `subject`.
    fn draw_fate(&self, st: &mut SimState, key: &str, subject: &FaultSubject<'_>) -> Fate {
        let mut fate = Fate::default();
        let at = Draw {
            seed: st.fault_seed,
            key,
            route: FaultRoute::Run,
            attempt: 0,
        };
        let SimState {
            faults, rule_hits, ..
        } = &mut *st;
        let fired = faults.pick_all(at, Some(subject), rule_hits);
        for fault in fired {
            match &fault {
                HttpFault::Failed { reason } if fate.fail.is_none() => {
                    let drawn = FailReason::from_draw(draw(st.fault_seed, key, "fail_reason", 0));
                    fate.fail = Some(reason.unwrap_or(drawn));
                }
                HttpFault::StatusDetour {
                    status,
                    duration_ms,
                } if fate.detour.is_none() => {
                    fate.detour = Some((*status, Duration::from_millis(*duration_ms)));
                }
                HttpFault::LateDownload { delay_ms } if fate.late_download.is_none() => {
                    fate.late_download = Some(Duration::from_millis(*delay_ms));
                }
                _ => continue,
            }
            *st.faults_injected
                .entry(fault.kind().to_owned())
                .or_insert(0) += 1;
        }
        fate
    }

    /// Draws the fault (if any) for the next attempt of `route` on `key` about `subject`
    /// (the create request of the execution concerned, if any), counting it.
    pub fn draw_fault(
        &self,
        route: FaultRoute,
        key: &str,
        subject: Option<&FaultSubject<'_>>,
    ) -> Option<HttpFault> {
        let mut st = self.lock();
        if st.faults.rules.is_empty() {
            return None;
        }
        let n = st.attempts.entry((route, key.to_owned())).or_insert(0);
        let attempt = *n;
        *n += 1;
        let at = Draw {
            seed: st.fault_seed,
            key,
            route,
            attempt,
        };
        let SimState {
            faults, rule_hits, ..
        } = &mut *st;
        let fault = faults.pick(at, subject, rule_hits)?;
        *st.faults_injected
            .entry(fault.kind().to_owned())
            .or_insert(0) += 1;
        Some(fault)
    }

    /// Counts a valid create request for request `key`.
    pub fn count_submission(&self, key: &str) {
        *self.lock().submissions.entry(key.to_owned()).or_insert(0) += 1;
    }

    /// The fault key of execution `id` on `instance` and what created it, or `id` itself
    /// (and nothing) when unknown.
    pub fn fault_target_of(&self, instance: &str, id: &str) -> (String, Option<RunSubject>) {
        let st = self.lock();
        Uuid::parse_str(id)
            .ok()
            .and_then(|u| st.index.get(&u))
            .filter(|(inst, _)| inst == instance)
            .and_then(|(inst, idx)| st.instances.get(inst)?.runs.get(*idx))
            .map_or_else(
                || (id.to_owned(), None),
                |r| (r.fault_key.clone(), Some(RunSubject::of(&r.spec))),
            )
    }

    /// Runs `f` on the catalog (saved workflows, schedules) of `instance`.
    pub fn with_catalog<T>(&self, instance: &str, f: impl FnOnce(&mut Catalog) -> T) -> T {
        f(self.lock().catalogs.entry(instance.to_owned()).or_default())
    }

    /// True when the advertiser (entity) id has been marked unknown.
    pub fn advertiser_unknown(&self, advertiser: &str) -> bool {
        self.lock().unknown_advertisers.contains(advertiser)
    }

    /// Invalidates an access token (an injected expiry).
    pub fn invalidate_token(&self, bearer: &str) {
        self.lock().tokens.invalidate(bearer);
    }

    /// Replaces the fault plan (and the seed / expired-token status when given).
    pub fn set_faults(&self, doc: FaultsDoc) {
        if let Some(status) = doc.expired_token_status {
            self.update_settings(|s| s.expired_token_status = status);
        }
        let mut st = self.lock();
        st.faults = doc.plan;
        st.rule_hits = RuleHits::default();
        if let Some(seed) = doc.seed {
            st.fault_seed = seed;
        }
    }

    /// The fault plan in force, as JSON.
    pub fn faults_json(&self) -> Value {
        let status = self.settings().expired_token_status;
        let st = self.lock();
        crate::faults::doc::plan_json(st.fault_seed, status, &st.faults)
    }

    /// Runs `f` on execution `id` of `instance` after advancing that instance to now.
    pub fn with_run<T>(&self, instance: &str, id: &str, f: impl FnOnce(&Run) -> T) -> Option<T> {
        let id = Uuid::parse_str(id).ok()?;
        let s = self.settings();
        let mut st = self.lock();
        let (inst_id, idx) = st.index.get(&id).cloned()?;
        if inst_id != instance {
            return None;
        }
        let inst = st.instances.get_mut(&inst_id)?;
        inst.advance(self.clock.now(), s.max_running, s.run_duration);
        inst.runs.get(idx).map(f)
    }

    /// The runs of `instance` (advanced to now) passed to `f`.
    pub fn with_instance<T>(&self, instance: &str, f: impl FnOnce(&[Run]) -> T) -> T {
        let s = self.settings();
        let mut st = self.lock();
        match st.instances.get_mut(instance) {
            Some(inst) => {
                inst.advance(self.clock.now(), s.max_running, s.run_duration);
                f(&inst.runs)
            }
            None => f(&[]),
        }
    }

    /// Cancels an active run.
    pub fn cancel(&self, instance: &str, id: &str) -> Result<(), CancelError> {
        let uuid = Uuid::parse_str(id).map_err(|_| CancelError::NotFound)?;
        let now = self.clock.now();
        let s = self.settings();
        let mut st = self.lock();
        let (inst_id, idx) = st.index.get(&uuid).cloned().ok_or(CancelError::NotFound)?;
        if inst_id != instance {
            return Err(CancelError::NotFound);
        }
        let inst = st
            .instances
            .get_mut(&inst_id)
            .ok_or(CancelError::NotFound)?;
        inst.advance(now, s.max_running, s.run_duration);
        inst.cancel(idx, now, s.max_running, s.run_duration)
            .map_err(CancelError::Terminal)?;
        st.cancels += 1;
        Ok(())
    }

    /// The SQL of execution `id` on any instance (for result downloads).
    pub fn result_sql(&self, id: &str) -> Option<String> {
        let id = Uuid::parse_str(id).ok()?;
        let st = self.lock();
        let (inst, idx) = st.index.get(&id)?;
        st.instances
            .get(inst)?
            .runs
            .get(*idx)
            .map(|r| r.spec.sql.clone())
    }

    /// The CSV set for `sql` (its `sim_result=<name>` marker), if any.
    pub fn canned_result(&self, sql: &str) -> Option<bytes::Bytes> {
        let name = crate::results::canned_name(sql)?;
        self.lock().canned_results.get(name).cloned()
    }

    /// Counters, peaks and every run, as the admin `stats` JSON.
    pub fn stats(&self) -> Value {
        let mut st = self.lock();
        self.advance_all(&mut st);
        let peak: serde_json::Map<String, Value> = st
            .instances
            .iter()
            .map(|(k, i)| (k.clone(), json!(i.peak_active)))
            .collect();
        let runs: Vec<Value> = st
            .order
            .iter()
            .filter_map(|id| {
                let (inst, idx) = st.index.get(id)?;
                let r = st.instances.get(inst)?.runs.get(*idx)?;
                Some(json!({
                    "instance_id": r.instance_id,
                    "workflow_execution_id": r.id.to_string(),
                    "workflow_id": r.workflow_id,
                    "sql_query": r.spec.sql,
                    "time_window_start": r.spec.start_original,
                    "time_window_end": r.spec.end_original,
                    "time_zone": r.spec.time_zone,
                    "status": r.status.as_str(),
                    "status_reason": r.status_reason,
                    "submissions": st.submissions.get(&r.request_key).copied().unwrap_or(0),
                    "created_at": r.created_at.to_rfc3339(),
                }))
            })
            .collect();
        let running: serde_json::Map<String, Value> = st
            .instances
            .iter()
            .map(|(k, i)| (k.clone(), json!(i.peak_running)))
            .collect();
        let max_running = st.instances.values().map(|i| i.peak_running).max();
        let mut workflows: Vec<Value> = st
            .catalogs
            .iter()
            .flat_map(|(instance, c)| {
                c.workflow_sizes().into_iter().map(move |(id, bytes)| {
                    json!({"instance_id": instance, "workflow_id": id, "sql_bytes": bytes})
                })
            })
            .collect();
        workflows.sort_by_key(|w| (w["instance_id"].to_string(), w["workflow_id"].to_string()));
        json!({
            "token_exchanges": st.token_exchanges,
            "token_exchanges_by_refresh_token": st.exchanges_by_refresh,
            "faults_injected": st.faults_injected,
            "max_running_seen": max_running.unwrap_or(0),
            "max_running_by_instance": running,
            "creates": st.creates,
            "cancels": st.cancels,
            "workflow_creates": st.workflow_creates,
            "workflow_updates": st.workflow_updates,
            "workflow_deletes": st.workflow_deletes,
            "workflows": workflows,
            "peak_active": peak,
            "runs": runs,
        })
    }

    /// Releases every held create answer; returns how many were waiting.
    pub fn release_held(&self) -> usize {
        let held = std::mem::take(&mut self.lock().held);
        let n = held.iter().filter(|tx| !tx.is_closed()).count();
        for tx in held {
            let _ = tx.send(());
        }
        n
    }

    /// Create answers currently held.
    pub fn held_count(&self) -> usize {
        self.lock().held.iter().filter(|tx| !tx.is_closed()).count()
    }

    fn advance_all(&self, st: &mut SimState) {
        let now = self.clock.now();
        let s = self.settings();
        for inst in st.instances.values_mut() {
            inst.advance(now, s.max_running, s.run_duration);
        }
    }
}

/// The request key of a create: instance, SQL and window (and the saved workflow, for a
/// run by `workflowId`). Creates with the same key are resubmissions of one request; fault
/// draws on creates are keyed by it.
pub fn request_key(instance: &str, spec: &CreateSpec) -> String {
    let part = |o: &Option<String>| o.clone().unwrap_or_default();
    let mut key = format!(
        "{instance}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}",
        spec.sql,
        spec.window_type,
        part(&spec.start_original),
        part(&spec.end_original),
        spec.time_zone
    );
    if let Some(id) = &spec.workflow_id {
        key.push_str("\u{1f}workflow=");
        key.push_str(id);
    }
    key
}

/// What created an execution, owned (see [`FaultSubject`]).
#[derive(Debug, Clone)]
pub struct RunSubject {
    sql: String,
    start: Option<String>,
    end: Option<String>,
}

impl RunSubject {
    /// The subject of a create request.
    pub fn of(spec: &CreateSpec) -> Self {
        Self {
            sql: spec.sql.clone(),
            start: spec.start_original.clone(),
            end: spec.end_original.clone(),
        }
    }

    /// Borrowed, for a fault draw.
    pub fn as_subject(&self) -> FaultSubject<'_> {
        FaultSubject {
            sql: &self.sql,
            time_window_start: self.start.as_deref(),
            time_window_end: self.end.as_deref(),
        }
    }
}
