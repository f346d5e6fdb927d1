//! `worker`: runs AMC executions (submit, poll, fetch, cancel) from the Redis queues.
//! Run as many replicas as you like.

use common::config::Config;
use poem::http::StatusCode;
use poem::{EndpointExt, Route, Server, get, handler, listener::TcpListener, web::Data};
use std::sync::Arc;
use worker::{Worker, WorkerHealth};

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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let config = Arc::new(Config::load_or_exit());
    common::telemetry::init(&config, "worker");
    config.warn_dev_fallbacks();
    let worker = Worker::build(config.clone()).await?;
    if let Some(addr) = config.worker_health_addr {
        let app = Route::new()
            .at("/healthz", get(healthz))
            .data(worker.health());
        tokio::spawn(async move {
            if let Err(e) = Server::new(TcpListener::bind(addr)).run(app).await {
                tracing::error!(error = %e, "worker health endpoint stopped");
            }
        });
        tracing::info!(%addr, "worker health endpoint at /healthz");
    }
    worker.run_until_stopped(common::shutdown::signal()).await
}
