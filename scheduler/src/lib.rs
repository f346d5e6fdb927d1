//! The scheduler process: the fire loop that turns schedules' ticks into runs, exactly
//! once with any number of replicas; and the system duties, each on its own interval and
//! safe with several replicas: the reconciler (DESIGN inv. 1) that re-enqueues overdue
//! work from Postgres, so that losing Redis, or a worker dying mid-step, loses nothing;
//! proactive token refresh; pruning; removing results past `AMP_RESULTS_RETENTION`;
//! deleting at AMC the saved workflows no run needs any more (`saved_workflows`); and the
//! gauges of shared state (`gauges`).

pub mod fire;
pub mod gauges;
pub mod health;
pub mod reconcile;
pub mod saved_workflows;
pub mod tokens;

use anyhow::Context;
use common::amc::{AmcClient, AmcConfig, LwaClient};
use common::config::Config;
use common::crypto::Cipher;
use common::telemetry::metrics::ReconcileLabels;
use queue::{Producer, QueueConfig};
use sea_orm::DatabaseConnection;
use std::future::Future;
use std::sync::Arc;

pub struct Scheduler {
    pub config: Arc<Config>,
    pub db: DatabaseConnection,
    pub producer: Producer,
    /// The AMC client (saved workflows are deleted through it) and its LWA client.
    pub amc: AmcClient,
    pub lwa: LwaClient,
    pub cipher: Cipher,
    pub token_refresh: tokens::TokenRefresh,
    /// Steps this process re-pushed lately (see [`reconcile::Repushes`]).
    pub repushes: reconcile::Repushes,
    /// This process's replica (registered at build; again if its row disappears).
    pub replica: fire::CurrentReplica,
    /// The schedules' probe of each reconcile look, for the fire loop (which then needs no
    /// query of its own while nothing happens).
    pub probes: tokio::sync::watch::Sender<Option<common::schedule::Probe>>,
    /// The scheduler's series, and the registry `/metrics` renders.
    pub metrics: common::telemetry::metrics::SchedulerMetrics,
    /// The shared-state gauges this process refreshes ([`gauges`]), and what reads the
    /// queues for them (and answers the readiness probe's PING).
    pub state: Arc<common::telemetry::metrics::StateMetrics>,
    pub inspector: queue::Inspector,
    /// The result store, when results have a retention (`AMP_RESULTS_RETENTION`).
    pub results: Option<common::results::ResultStore>,
    pub registry: Arc<prometheus_client::registry::Registry>,
}

/// The queue settings every process derives from the config.
pub fn queue_config(config: &Config) -> QueueConfig {
    let mut q = QueueConfig::new(config.redis_url.clone(), config.redis_prefix.clone());
    q.claim_idle = config.claim_idle;
    q
}

impl Scheduler {
    pub async fn build(config: Arc<Config>) -> anyhow::Result<Self> {
        let db = common::db::connect(&config.database_url, config.pool_size(5))
            .await
            .context("connecting to Postgres (AMP_DATABASE_URL)")?;
        let producer = Producer::connect(queue_config(&config))
            .await
            .context("connecting to Redis (AMP_REDIS_URL)")?
            .with_trace(common::telemetry::trace::source());
        let inspector = queue::Inspector::connect(queue_config(&config))
            .await
            .context("connecting to Redis (AMP_REDIS_URL)")?;
        let mut registry = prometheus_client::registry::Registry::default();
        let mut amc = AmcConfig::from_config(&config);
        amc.metrics = Some(Arc::new(common::telemetry::metrics::AmcMetrics::register(
            &mut registry,
        )));
        let amc = AmcClient::new(amc).context("building the AMC client")?;
        let lwa = amc.lwa().clone();
        let cipher = config.cipher().context("AMP_ENCRYPTION_KEY")?;
        let token_refresh = tokens::TokenRefresh::from_env()?;
        let metrics = common::telemetry::metrics::SchedulerMetrics::register(&mut registry);
        let state = common::telemetry::metrics::StateMetrics::register(&mut registry);
        let results = match config.results_retention {
            Some(_) => Some(
                common::results::ResultStore::from_url(&config.results_url)
                    .context("opening the result store")?,
            ),
            None => None,
        };
        let replica = common::schedule::Replica::register(&db, config.reconcile_interval)
            .await
            .context("registering the scheduler replica")?;
        tracing::info!(replica = %replica.id, "scheduler replica registered");
        Ok(Self {
            replica: fire::CurrentReplica::new(replica),
            probes: tokio::sync::watch::channel(None).0,
            metrics,
            state,
            inspector,
            results,
            registry: Arc::new(registry),
            config,
            db,
            producer,
            amc,
            lwa,
            cipher,
            token_refresh,
            repushes: Default::default(),
        })
    }

    /// Runs the fire loop and the duties until `shutdown` resolves; then records the
    /// replica's stop.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()>) {
        let s = Arc::new(self);
        let (stop_tx, stop) = tokio::sync::watch::channel(false);
        let reconcile_every = s.config.reconcile_interval;
        let tokens_every = s.token_refresh.interval;
        let prune_every = s.config.prune_interval;
        let gauges_every = s.config.metrics_interval;
        let mut tasks = vec![
            tokio::spawn(fire::run(s.clone(), stop.clone())),
            // The first reconcile pass runs at once (a fresh start may follow a crash); the
            // token pass and pruning one interval after start.
            tokio::spawn(duty(stop.clone(), reconcile_every, true, {
                let s = s.clone();
                move || {
                    let s = s.clone();
                    async move { reconcile_pass(&s).await }
                }
            })),
            tokio::spawn(duty(stop.clone(), tokens_every, false, {
                let s = s.clone();
                move || {
                    let s = s.clone();
                    async move { token_pass(&s).await }
                }
            })),
            tokio::spawn(duty(stop.clone(), prune_every, false, {
                let s = s.clone();
                move || {
                    let s = s.clone();
                    async move { prune_pass(&s).await }
                }
            })),
            tokio::spawn(duty(stop.clone(), prune_every, false, {
                let s = s.clone();
                move || {
                    let s = s.clone();
                    async move { saved_workflows::pass(&s).await }
                }
            })),
            // The shared-state gauges at once, so a fresh replica exports them.
            tokio::spawn(duty(stop.clone(), gauges_every, true, {
                let s = s.clone();
                move || {
                    let s = s.clone();
                    async move { gauges::refresh(&s).await }
                }
            })),
        ];
        if let (Some(retention), Some(_)) = (s.config.results_retention, &s.results) {
            tasks.push(tokio::spawn(duty(stop.clone(), prune_every, false, {
                let s = s.clone();
                move || {
                    let s = s.clone();
                    async move { retention_pass(&s, retention).await }
                }
            })));
        }
        shutdown.await;
        let _ = stop_tx.send(true);
        for t in tasks {
            let _ = t.await;
        }
        tracing::info!("scheduler stopped");
    }
}

/// Runs `pass` every `every` until `stop` turns true (a pass in progress finishes first).
async fn duty<F, Fut>(
    mut stop: tokio::sync::watch::Receiver<bool>,
    every: std::time::Duration,
    at_once: bool,
    pass: F,
) where
    F: Fn() -> Fut,
    Fut: Future<Output = ()>,
{
    let start = tokio::time::Instant::now()
        + if at_once {
            std::time::Duration::ZERO
        } else {
            every
        };
    let mut tick = tokio::time::interval_at(start, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => pass().await,
            r = stop.changed() => if r.is_err() || *stop.borrow() { return },
        }
    }
}

async fn reconcile_pass(s: &Scheduler) {
    s.metrics.passes.inc();
    match reconcile::once(s).await {
        Ok(r) if r.total() > 0 => tracing::info!(
            steps = r.steps,
            admissions = r.admissions,
            cancels = r.cancels,
            collections = r.collections,
            deliveries = r.deliveries,
            woke_dispatchers = r.woke_dispatchers,
            "reconciled overdue work"
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!(
            error = format!("{e:#}"),
            "reconcile pass failed; trying again next tick"
        ),
    }
}

async fn token_pass(s: &Scheduler) {
    match tokens::refresh_expiring(s).await {
        Ok(p) if p != tokens::RefreshPass::default() => tracing::info!(
            refreshed = p.refreshed,
            reauth_required = p.reauth_required,
            failed = p.failed,
            "refreshed expiring access tokens"
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!(
            error = format!("{e:#}"),
            "token refresh pass failed; trying again next interval"
        ),
    }
}

async fn prune_pass(s: &Scheduler) {
    match common::prune::prune(&s.db, s.config.event_retention).await {
        Ok(p) => {
            for (kind, n) in [
                ("events", p.events),
                ("dead_jobs", p.dead_jobs),
                ("schedule_runs", p.schedule_runs),
                ("workers", p.workers),
                ("schedulers", p.schedulers),
            ] {
                if n > 0 {
                    s.metrics
                        .pruned
                        .get_or_create(&ReconcileLabels { kind })
                        .inc_by(n);
                }
            }
            if p.total() > 0 {
                tracing::info!(
                    events = p.events,
                    dead_jobs = p.dead_jobs,
                    schedule_runs = p.schedule_runs,
                    workers = p.workers,
                    schedulers = p.schedulers,
                    "pruned old rows"
                );
            }
        }
        Err(e) => tracing::warn!(error = %e, "pruning failed; trying again next interval"),
    }
}

async fn retention_pass(s: &Scheduler, retention: std::time::Duration) {
    let Some(store) = &s.results else { return };
    match common::result_retention::expire_results(&s.db, store, retention).await {
        Ok(0) => {}
        Ok(n) => {
            s.metrics
                .pruned
                .get_or_create(&ReconcileLabels { kind: "results" })
                .inc_by(n);
            tracing::info!(results = n, "removed results past their retention");
        }
        Err(e) => tracing::warn!(
            error = %e,
            "removing expired results failed; trying again next interval"
        ),
    }
}
