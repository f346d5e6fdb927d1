//! `worker`: runs AMC executions (submit, poll, fetch, cancel) from the Redis queues.
//! Run as many replicas as you like.

use anyhow::Context;
use common::config::Config;
use std::sync::Arc;
use worker::Worker;

// Handlers allocate many small, short-lived buffers (rows, JSON, URLs); mimalloc serves
// them with a fraction of the CPU glibc's allocator spends (BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let config = Arc::new(Config::load_or_exit());
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = config.worker_threads {
        runtime.worker_threads(n);
    }
    runtime
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(run(config))
}

async fn run(config: Arc<Config>) -> anyhow::Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let _telemetry = common::telemetry::init(&config, "worker");
    config.warn_dev_fallbacks();
    let worker = Worker::build(config.clone()).await?;
    if let Some(addr) = config.worker_health_addr {
        worker::health::serve(addr, &worker).await?;
    }
    worker.run_until_stopped(common::shutdown::signal()).await
}
