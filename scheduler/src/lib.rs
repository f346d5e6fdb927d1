//! The scheduler process: the reconciler (DESIGN inv. 1) that re-enqueues overdue work
//! from Postgres, so that losing Redis, or a worker dying mid-step, loses nothing.

pub mod health;
pub mod reconcile;
pub mod tokens;

use anyhow::Context;
use common::amc::{AmcConfig, LwaClient};
use common::config::Config;
use common::crypto::Cipher;
use queue::{Producer, QueueConfig};
use sea_orm::DatabaseConnection;
use std::future::Future;
use std::sync::Arc;

pub struct Scheduler {
    pub config: Arc<Config>,
    pub db: DatabaseConnection,
    pub producer: Producer,
    pub lwa: LwaClient,
    pub cipher: Cipher,
    pub token_refresh: tokens::TokenRefresh,
    /// Steps this process re-pushed lately (see [`reconcile::Repushes`]).
    pub repushes: reconcile::Repushes,
    /// The scheduler's series, and the registry `/metrics` renders.
    pub metrics: common::telemetry::metrics::SchedulerMetrics,
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
        let db = common::db::connect(&config.database_url, 5)
            .await
            .context("connecting to Postgres (AMP_DATABASE_URL)")?;
        let producer = Producer::connect(queue_config(&config))
            .await
            .context("connecting to Redis (AMP_REDIS_URL)")?;
        let lwa =
            LwaClient::new(AmcConfig::from_config(&config)).context("building the LWA client")?;
        let cipher = Cipher::from_base64_key(config.encryption_key.expose())
            .context("AMP_ENCRYPTION_KEY")?;
        let token_refresh = tokens::TokenRefresh::from_env()?;
        let mut registry = prometheus_client::registry::Registry::default();
        let metrics = common::telemetry::metrics::SchedulerMetrics::register(&mut registry);
        Ok(Self {
            metrics,
            registry: Arc::new(registry),
            config,
            db,
            producer,
            lwa,
            cipher,
            token_refresh,
            repushes: Default::default(),
        })
    }

    /// Runs the periodic duties until `shutdown` resolves.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()>) {
        let mut tick = tokio::time::interval(self.config.reconcile_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first token pass runs one interval after start (a fresh start has just
        // connected or restarted; reconciling comes first).
        let period = self.token_refresh.interval;
        let mut token_tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        token_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                _ = token_tick.tick() => {
                    match tokens::refresh_expiring(&self).await {
                        Ok(p) if p != tokens::RefreshPass::default() => tracing::info!(refreshed = p.refreshed, reauth_required = p.reauth_required, failed = p.failed, "refreshed expiring access tokens"),
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = format!("{e:#}"), "token refresh pass failed; trying again next interval"),
                    }
                }
                _ = tick.tick() => {
                    self.metrics.passes.inc();
                    match reconcile::once(&self).await {
                        Ok(r) if r.total() > 0 => tracing::info!(steps = r.steps, admissions = r.admissions, cancels = r.cancels, "reconciled overdue work"),
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = format!("{e:#}"), "reconcile pass failed; trying again next tick"),
                    }
                }
            }
        }
        tracing::info!("scheduler stopped");
    }
}
