//! The worker process: apalis workers over our Redis Streams transport, one per queue,
//! running the execution steps (submit, poll, fetch, cancel) and admission.

pub mod ctx;
pub mod jobs;
mod target;
pub mod token;

use anyhow::Context;
use apalis_core::error::BoxDynError;
use apalis_core::task::data::Data;
use apalis_core::worker::builder::WorkerBuilder;
use common::amc::{AmcClient, AmcConfig, LwaClient};
use common::config::Config;
use common::crypto::Cipher;
use common::jobs::{
    AdmitJobV1, EXECUTION_CANCEL, EXECUTION_FETCH, EXECUTION_POLL, EXECUTION_SUBMIT,
    INSTANCE_ADMIT, StepJobV1,
};
use common::results::ResultStore;
use ctx::Ctx;
use futures::future::BoxFuture;
use queue::{ConsumerHealth, Producer, QueueConfig, RedisBackend, RedisWorkerExt};
use std::future::Future;
use std::sync::Arc;
use tokio::sync::watch;

/// The queue settings every process derives from the config.
pub fn queue_config(config: &Config) -> QueueConfig {
    let mut q = QueueConfig::new(config.redis_url.clone(), config.redis_prefix.clone());
    q.claim_idle = config.claim_idle;
    q
}

/// Builds the shared handler context from the config.
pub async fn build_ctx(config: Arc<Config>) -> anyhow::Result<Ctx> {
    let db = common::db::connect(
        &config.database_url,
        (config.worker_concurrency as u32).clamp(5, 50),
    )
    .await
    .context("connecting to Postgres (AMP_DATABASE_URL)")?;
    let producer = Producer::connect(queue_config(&config))
        .await
        .context("connecting to Redis (AMP_REDIS_URL)")?;
    let amc_config = AmcConfig::from_config(&config);
    let amc = AmcClient::new(amc_config.clone()).context("building the AMC client")?;
    let lwa = LwaClient::new(amc_config).context("building the LWA client")?;
    let cipher =
        Cipher::from_base64_key(config.encryption_key.expose()).context("AMP_ENCRYPTION_KEY")?;
    let results = ResultStore::from_url(&config.results_url)?;
    Ok(Ctx {
        config,
        db,
        producer,
        amc,
        lwa,
        cipher: Arc::new(cipher),
        results,
    })
}

async fn submit(job: StepJobV1, ctx: Data<Ctx>) -> Result<(), BoxDynError> {
    jobs::submit::handle(&ctx, job).await.map_err(Into::into)
}
async fn poll(job: StepJobV1, ctx: Data<Ctx>) -> Result<(), BoxDynError> {
    jobs::poll::handle(&ctx, job).await.map_err(Into::into)
}
async fn fetch(job: StepJobV1, ctx: Data<Ctx>) -> Result<(), BoxDynError> {
    jobs::fetch::handle(&ctx, job).await.map_err(Into::into)
}
async fn cancel(job: StepJobV1, ctx: Data<Ctx>) -> Result<(), BoxDynError> {
    jobs::cancel::handle(&ctx, job).await.map_err(Into::into)
}
async fn admit(job: AdmitJobV1, ctx: Data<Ctx>) -> Result<(), BoxDynError> {
    jobs::admit::handle(&ctx, job).await.map_err(Into::into)
}

/// A running worker process: one apalis worker per queue.
pub struct Worker {
    ctx: Ctx,
    health: Vec<ConsumerHealth>,
    stop_tx: watch::Sender<bool>,
    runs: Vec<BoxFuture<'static, (String, Result<(), String>)>>,
}

async fn stop_signal(mut rx: watch::Receiver<bool>) -> Result<(), std::io::Error> {
    let _ = rx.wait_for(|stop| *stop).await;
    Ok(())
}

macro_rules! spawn_queue {
    ($self:ident, $queue:expr, $args:ty, $handler:ident, $concurrency:expr) => {{
        let backend = RedisBackend::<$args>::new(queue_config(&$self.ctx.config), $queue)?;
        $self.health.push(backend.health());
        let worker = WorkerBuilder::new(format!("{}-{}", $queue, backend.consumer_name()))
            .backend(backend)
            .concurrency($concurrency)
            .data($self.ctx.clone())
            .build($handler);
        let signal = stop_signal($self.stop_tx.subscribe());
        $self.runs.push(Box::pin(async move {
            let r = worker.run_until(signal).await.map_err(|e| e.to_string());
            ($queue.to_string(), r)
        }));
    }};
}

impl Worker {
    pub async fn build(config: Arc<Config>) -> anyhow::Result<Self> {
        let ctx = build_ctx(config).await?;
        let (stop_tx, _) = watch::channel(false);
        let mut w = Worker {
            ctx,
            health: Vec::new(),
            stop_tx,
            runs: Vec::new(),
        };
        let c = w.ctx.config.worker_concurrency;
        spawn_queue!(w, EXECUTION_SUBMIT, StepJobV1, submit, c);
        spawn_queue!(w, EXECUTION_POLL, StepJobV1, poll, c);
        spawn_queue!(w, EXECUTION_FETCH, StepJobV1, fetch, c);
        spawn_queue!(w, EXECUTION_CANCEL, StepJobV1, cancel, c.min(16));
        spawn_queue!(w, INSTANCE_ADMIT, AdmitJobV1, admit, c.min(8));
        Ok(w)
    }

    /// True while every queue consumer can reach Redis.
    pub fn health(&self) -> WorkerHealth {
        WorkerHealth(self.health.clone())
    }

    /// Runs until `shutdown` resolves, then stops taking jobs, hands back fetched ones and
    /// lets in-flight ones finish within `AMP_SHUTDOWN_TIMEOUT`.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let timeout = self.ctx.config.shutdown_timeout;
        let mut all = futures::future::join_all(self.runs);
        tokio::select! {
            results = &mut all => {
                for (queue, r) in results {
                    if let Err(e) = r {
                        anyhow::bail!("the {queue} worker stopped: {e}");
                    }
                }
                return Ok(());
            }
            _ = shutdown => {}
        }
        let _ = self.stop_tx.send(true);
        match tokio::time::timeout(timeout, all).await {
            Ok(results) => {
                for (queue, r) in results {
                    if let Err(e) = r {
                        tracing::warn!(queue, error = %e, "worker stopped with an error");
                    }
                }
                tracing::info!("worker stopped gracefully");
            }
            Err(_) => tracing::warn!(
                timeout_ms = timeout.as_millis() as u64,
                "shutdown timeout reached; unfinished jobs will be taken over by other workers"
            ),
        }
        Ok(())
    }
}

/// The health of a worker's consumers.
#[derive(Clone)]
pub struct WorkerHealth(Vec<ConsumerHealth>);

impl WorkerHealth {
    pub fn is_healthy(&self) -> bool {
        self.0.iter().all(ConsumerHealth::is_healthy)
    }
}
