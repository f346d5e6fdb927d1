//! `worker`: runs AMC executions (submit, poll, fetch, cancel) from the Redis queues.
//! Run as many replicas as you like.

use anyhow::Context;
use common::config::Config;
use poem::http::StatusCode;
use poem::{EndpointExt, Route, Server, get, handler, listener::TcpListener, web::Data};
use std::sync::Arc;
use worker::{Worker, WorkerHealth};

// Handlers allocate many small, short-lived buffers (rows, JSON, URLs); mimalloc serves
// them with a fraction of the CPU glibc's allocator spends (BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[handler]
fn healthz(health: Data<&WorkerHealth>) -> (StatusCode, &'static str) {
    if health.is_healthy() {
        (StatusCode::OK, "{\"status\":\"ok\"}")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "{\"status\":\"unavailable\",\"detail\":\"cannot consume from Redis\"}",
        )
    }
}

#[handler]
fn metrics(registry: Data<&Arc<prometheus_client::registry::Registry>>) -> poem::Response {
    poem::Response::builder()
        .content_type(common::telemetry::metrics::CONTENT_TYPE)
        .body(common::telemetry::metrics::render(&registry))
}

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
    common::telemetry::init(&config, "worker");
    config.warn_dev_fallbacks();
    let worker = Worker::build(config.clone()).await?;
    if let Some(addr) = config.worker_health_addr {
        let app = Route::new()
            .at("/healthz", get(healthz))
            .at("/metrics", get(metrics))
            .data(worker.health())
            .data(worker.registry());
        tokio::spawn(async move {
            if let Err(e) = Server::new(TcpListener::bind(addr)).run(app).await {
                tracing::error!(error = %e, "worker health endpoint stopped");
            }
        });
        tracing::info!(%addr, "worker health endpoint at /healthz, metrics at /metrics");
    }
    worker.run_until_stopped(common::shutdown::signal()).await
}
