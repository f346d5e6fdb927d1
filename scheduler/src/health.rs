//! The scheduler's operational endpoints (`AMP_SCHEDULER_HEALTH_ADDR`): `/healthz` while the
//! process runs, `/readyz` (Postgres and Redis answer within 1 s), `/metrics` in
//! Prometheus text.

use crate::Scheduler;
use poem::http::StatusCode;
use poem::listener::TcpListener;
use poem::web::{Data, Json};
use poem::{EndpointExt, IntoResponse, Response, Route, Server, get, handler};
use prometheus_client::registry::Registry;
use sea_orm::DatabaseConnection;
use std::net::SocketAddr;
use std::sync::Arc;

#[handler]
fn healthz() -> &'static str {
    "{\"status\":\"ok\"}"
}

#[handler]
async fn readyz(db: Data<&DatabaseConnection>, redis: Data<&queue::Inspector>) -> Response {
    let r = common::readiness::probe(&db, redis.ping()).await;
    if r.is_ready() {
        return Json(r.body()).into_response();
    }
    r.log();
    (StatusCode::SERVICE_UNAVAILABLE, Json(r.body())).into_response()
}

#[handler]
fn metrics(registry: Data<&Arc<Registry>>) -> Response {
    Response::builder()
        .content_type(common::telemetry::metrics::CONTENT_TYPE)
        .body(common::telemetry::metrics::render(&registry))
}

/// Serves the endpoints on `addr` in a task of its own.
pub fn serve(addr: SocketAddr, s: &Scheduler) {
    let app = Route::new()
        .at("/healthz", get(healthz))
        .at("/readyz", get(readyz))
        .at("/metrics", get(metrics))
        .data(s.registry.clone())
        .data(s.db.clone())
        .data(s.inspector.clone());
    tokio::spawn(async move {
        if let Err(e) = Server::new(TcpListener::bind(addr)).run(app).await {
            tracing::error!(error = %e, "scheduler health endpoint stopped");
        }
    });
    tracing::info!(%addr, "scheduler health endpoint at /healthz, /readyz, metrics at /metrics");
}
