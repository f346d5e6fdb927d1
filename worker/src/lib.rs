//! The worker process: apalis workers over our Redis Streams transport, one per job kind
//! (`jobs::register`), running the execution steps (submit, poll, fetch, cancel) and
//! admission.

pub mod ctx;
pub mod dispatch;
pub mod fleet;
pub mod health;
pub mod hooks;
pub mod jobs;
pub mod registry;
pub mod sending;
pub mod steps;
pub mod testing;
pub mod token;

use anyhow::Context;
use common::amc::{AmcClient, AmcConfig, LwaClient};
use common::config::Config;
use common::results::ResultStore;
use ctx::Ctx;
use queue::{ConsumerHealth, Producer, QueueConfig};
use registry::{HandBackOf, Registrar, RunResult};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// The queue settings every process derives from the config.
pub fn queue_config(config: &Config) -> QueueConfig {
    let mut q = QueueConfig::new(config.redis_url.clone(), config.redis_prefix.clone());
    q.claim_idle = config.claim_idle;
    if let Some(n) = config.job_max_attempts {
        q.max_attempts = n;
    }
    q
}

/// Builds the shared handler context from the config.
pub async fn build_ctx(config: Arc<Config>) -> anyhow::Result<Ctx> {
    let db = common::db::connect(
        &config.database_url,
        config.pool_size((config.worker_concurrency as u32).clamp(5, 50)),
    )
    .await
    .context("connecting to Postgres (AMP_DATABASE_URL)")?;
    let producer = Producer::connect(queue_config(&config))
        .await
        .context("connecting to Redis (AMP_REDIS_URL)")?
        .with_trace(common::telemetry::trace::source());
    let mut registry = prometheus_client::registry::Registry::default();
    let mut amc_config = AmcConfig::from_config(&config);
    amc_config.metrics = Some(Arc::new(common::telemetry::metrics::AmcMetrics::register(
        &mut registry,
    )));
    let amc = AmcClient::new(amc_config.clone()).context("building the AMC client")?;
    let lwa = LwaClient::new(amc_config).context("building the LWA client")?;
    let cipher = config.cipher().context("AMP_ENCRYPTION_KEY")?;
    let results = ResultStore::from_url(&config.results_url)?;
    let steps = crate::steps::Steps::start(
        db.clone(),
        producer.clone(),
        Default::default(),
        crate::ctx::step_lease(&config),
    );
    let metrics = Arc::new(common::telemetry::metrics::JobMetrics::register(
        &mut registry,
    ));
    let hooks = hooks::Hooks::new(
        config.webhook_timeout,
        config.webhook_allow_private,
        config.worker_concurrency,
    )
    .context("building the webhook client")?;
    let delivered = hooks::Delivered::start(db.clone(), Default::default());
    Ok(Ctx {
        hooks,
        delivered,
        metrics,
        registry: Arc::new(registry),
        admissions: Default::default(),
        sending: Default::default(),
        stopping: Default::default(),
        steps,
        config,
        db,
        producer,
        amc,
        lwa,
        cipher: Arc::new(cipher),
        results,
    })
}

/// A running worker process: one apalis worker per queue.
pub struct Worker {
    ctx: Ctx,
    identity: common::fleet::Identity,
    health: Vec<ConsumerHealth>,
    hand_backs: Vec<HandBackOf>,
    stop_tx: watch::Sender<bool>,
    runs: Vec<futures::future::BoxFuture<'static, RunResult>>,
}

impl Worker {
    pub async fn build(config: Arc<Config>) -> anyhow::Result<Self> {
        let ctx = build_ctx(config).await?;
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut identity = fleet::new_identity(ctx.config.worker_concurrency);
        let mut r = Registrar {
            ctx: ctx.clone(),
            consumer: identity.id.clone(),
            queues: Vec::new(),
            health: Vec::new(),
            hand_backs: Vec::new(),
            runs: Vec::new(),
            stop: stop_rx,
        };
        jobs::register(&mut r)?;
        identity.queues = r.queues;
        let w = Worker {
            ctx,
            identity,
            health: r.health,
            hand_backs: r.hand_backs,
            stop_tx,
            runs: r.runs,
        };
        common::fleet::register(&w.ctx.db, &w.identity)
            .await
            .context("registering the worker in `workers`")?;
        tracing::info!(worker.id = %w.identity.id, "worker registered");
        Ok(w)
    }

    /// This worker's identity (its id is the consumer name in every queue's group).
    pub fn identity(&self) -> &common::fleet::Identity {
        &self.identity
    }

    /// The registry of this worker's metrics.
    pub fn registry(&self) -> Arc<prometheus_client::registry::Registry> {
        self.ctx.registry.clone()
    }

    /// True while every queue consumer can reach Redis.
    pub fn health(&self) -> WorkerHealth {
        WorkerHealth(self.health.clone())
    }

    /// Runs until `shutdown` resolves, then stops taking jobs, hands back fetched ones and
    /// lets in-flight ones finish within `AMP_SHUTDOWN_TIMEOUT`. Jobs still running when
    /// the deadline nears are handed back to the queue (handlers are idempotent), so
    /// another worker runs them at once; then the row in `workers` gets `stopped_at`.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let timeout = self.ctx.config.shutdown_timeout;
        let background = CancellationToken::new();
        tokio::spawn(fleet::run_heartbeats(
            self.ctx.db.clone(),
            self.identity.clone(),
            background.clone(),
        ));
        tokio::spawn(fleet::run_dead_drain(
            self.ctx.db.clone(),
            self.ctx.producer.clone(),
            self.identity.queues.clone(),
            background.clone(),
        ));
        let deliveries = dispatch::InFlight::default();
        let dispatching = CancellationToken::new();
        tokio::spawn(dispatch::run(
            self.ctx.clone(),
            dispatching.clone(),
            deliveries.clone(),
        ));
        let _stop_dispatching = dispatching.clone().drop_guard();
        let _stop_background = background.drop_guard();
        // Each queue's worker is a task of its own, so handlers run on the runtime's
        // threads beside the connections they wait on, not on the main thread.
        let mut runs = Runs(self.runs.into_iter().map(tokio::spawn).collect());
        let mut all = futures::future::join_all(runs.0.iter_mut());
        tokio::select! {
            results = &mut all => {
                for (queue, r) in results.into_iter().map(Runs::outcome) {
                    if let Err(e) = r {
                        anyhow::bail!("the {queue} worker stopped: {e}");
                    }
                }
                return Ok(());
            }
            _ = shutdown => {}
        }
        let started = tokio::time::Instant::now();
        let _ = self.stop_tx.send(true);
        self.ctx.stopping.cancel();
        dispatching.cancel();
        let margin = shutdown_margin(timeout);
        // `&mut all`: on timeout the handlers stay alive (and their jobs held) until handed back.
        // The dispatcher claims nothing more; its attempts under way finish with the jobs.
        let finished = async { tokio::join!(&mut all, deliveries.drained()).0 };
        match tokio::time::timeout(timeout.saturating_sub(margin), finished).await {
            Ok(results) => {
                for (queue, r) in results.into_iter().map(Runs::outcome) {
                    if let Err(e) = r {
                        tracing::warn!(queue, error = %e, "worker stopped with an error");
                    }
                }
                tracing::info!("worker stopped gracefully");
            }
            Err(_) => {
                let handed = tokio::time::timeout(
                    margin / 2,
                    fleet::hand_back_running(&self.ctx, &self.hand_backs),
                )
                .await
                .unwrap_or(0);
                tracing::warn!(
                    timeout_ms = timeout.as_millis() as u64,
                    handed_back = handed,
                    "shutdown deadline near; running jobs handed back to the queue"
                );
            }
        }
        drop(all);
        drop(runs);
        let left = timeout.saturating_sub(started.elapsed()).min(margin / 2);
        match tokio::time::timeout(
            left,
            common::fleet::mark_stopped(&self.ctx.db, &self.identity.id),
        )
        .await
        {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "could not mark the worker stopped"),
            Err(_) => tracing::warn!("marking the worker stopped timed out"),
        }
        Ok(())
    }
}

/// The queue workers' tasks; dropping them stops what still runs (after hand-back).
struct Runs(Vec<tokio::task::JoinHandle<RunResult>>);

impl Runs {
    fn outcome(r: Result<RunResult, tokio::task::JoinError>) -> RunResult {
        r.unwrap_or_else(|e| ("?", Err(format!("worker task ended: {e}"))))
    }
}

impl Drop for Runs {
    fn drop(&mut self) {
        for h in &self.0 {
            h.abort();
        }
    }
}

/// The part of the shutdown timeout kept for handing back running jobs and marking the
/// worker stopped: a quarter, between 200 ms and 2 s.
fn shutdown_margin(timeout: Duration) -> Duration {
    (timeout / 4).clamp(Duration::from_millis(200), Duration::from_secs(2))
}

/// The health of a worker's consumers.
#[derive(Clone)]
pub struct WorkerHealth(Vec<ConsumerHealth>);

impl WorkerHealth {
    pub fn is_healthy(&self) -> bool {
        self.0.iter().all(ConsumerHealth::is_healthy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn margins() {
        assert_eq!(
            shutdown_margin(Duration::from_secs(4)),
            Duration::from_secs(1)
        );
        assert_eq!(
            shutdown_margin(Duration::from_secs(30)),
            Duration::from_secs(2)
        );
        assert_eq!(
            shutdown_margin(Duration::from_millis(100)),
            Duration::from_millis(200)
        );
    }
}
