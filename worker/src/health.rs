//! The worker's operational endpoints (`AMP_WORKER_HEALTH_ADDR`): `/healthz` (failing while
//! its consumers cannot reach Redis), `/readyz` (its consumers are healthy, and Postgres
//! and Redis answer within 1 s) and `/metrics` (Prometheus text).

use crate::{Worker, WorkerHealth};
use anyhow::Context;
use poem::http::StatusCode;
use poem::web::{Data, Json};
use poem::{EndpointExt, IntoResponse, Response, Route, Server, get, handler};
use prometheus_client::registry::Registry;
use sea_orm::DatabaseConnection;
use std::net::SocketAddr;
use std::sync::Arc;

/// What `/readyz` asks.
#[derive(Clone)]
struct Probes {
    db: DatabaseConnection,
    redis: queue::Inspector,
    consumers: WorkerHealth,
}

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
async fn readyz(p: Data<&Probes>) -> Response {
    let mut r = common::readiness::probe(&p.db, p.redis.ping()).await;
    if !p.consumers.is_healthy() {
        r.fail("consumers", "a queue consumer cannot consume from Redis");
    }
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
pub async fn serve(addr: SocketAddr, worker: &Worker) -> anyhow::Result<()> {
    let redis = queue::Inspector::connect(crate::queue_config(&worker.ctx.config))
        .await
        .context("connecting to Redis for the readiness probe")?;
    let probes = Probes {
        db: worker.ctx.db.clone(),
        redis,
        consumers: worker.health(),
    };
    let app = Route::new()
        .at("/healthz", get(healthz))
        .at("/readyz", get(readyz))
        .at("/metrics", get(metrics))
        .data(worker.health())
        .data(probes)
        .data(worker.registry());
    tokio::spawn(async move {
        if let Err(e) = Server::new(poem::listener::TcpListener::bind(addr))
            .run(app)
            .await
        {
            tracing::error!(error = %e, "worker health endpoint stopped");
        }
    });
    tracing::info!(%addr, "worker health endpoint at /healthz, /readyz, metrics at /metrics");
    Ok(())
}
