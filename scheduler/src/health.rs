//! The scheduler's operational endpoints (`AMP_SCHEDULER_HEALTH_ADDR`): `/healthz` while the
//! process runs, `/metrics` in Prometheus text.

use poem::listener::TcpListener;
use poem::web::Data;
use poem::{EndpointExt, Route, Server, get, handler};
use prometheus_client::registry::Registry;
use std::net::SocketAddr;
use std::sync::Arc;

#[handler]
fn healthz() -> &'static str {
    "{\"status\":\"ok\"}"
}

#[handler]
fn metrics(registry: Data<&Arc<Registry>>) -> poem::Response {
    poem::Response::builder()
        .content_type(common::telemetry::metrics::CONTENT_TYPE)
        .body(common::telemetry::metrics::render(&registry))
}

/// Serves the endpoints on `addr` in a task of its own.
pub fn serve(addr: SocketAddr, registry: Arc<Registry>) {
    let app = Route::new()
        .at("/healthz", get(healthz))
        .at("/metrics", get(metrics))
        .data(registry);
    tokio::spawn(async move {
        if let Err(e) = Server::new(TcpListener::bind(addr)).run(app).await {
            tracing::error!(error = %e, "scheduler health endpoint stopped");
        }
    });
    tracing::info!(%addr, "scheduler health endpoint at /healthz, metrics at /metrics");
}
