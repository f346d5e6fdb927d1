//! The scheduler process: the reconciler (DESIGN inv. 1) that re-enqueues overdue work
//! from Postgres, so that losing Redis, or a worker dying mid-step, loses nothing.

pub mod reconcile;

use anyhow::Context;
use common::config::Config;
use queue::{Producer, QueueConfig};
use sea_orm::DatabaseConnection;
use std::future::Future;
use std::sync::Arc;

pub struct Scheduler {
    pub config: Arc<Config>,
    pub db: DatabaseConnection,
    pub producer: Producer,
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
        Ok(Self {
            config,
            db,
            producer,
        })
    }

    /// Runs the periodic duties until `shutdown` resolves.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()>) {
        let mut tick = tokio::time::interval(self.config.reconcile_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                _ = tick.tick() => {
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
