//! Operational endpoints outside the OpenAPI spec: `/healthz` (alive), `/readyz`
//! (Postgres and Redis reachable) and `/metrics` (Prometheus text).

use crate::error::Problem;
use crate::state::AppState;
use poem::http::StatusCode;
use poem::web::{Data, Json};
use poem::{IntoResponse, Response, handler};
use sea_orm::ConnectionTrait;
use std::sync::Arc;
use std::time::Duration;

const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// 200 `{"status":"ok"}` while the process serves requests.
#[handler]
pub async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// 200 `{"status":"ready"}` when Postgres and Redis answer; else 503 naming what is down.
#[handler]
pub async fn readyz(state: Data<&Arc<AppState>>) -> Response {
    let (pg, redis) = tokio::join!(check_postgres(&state), check_redis(&state));
    let mut down = Vec::new();
    if let Err(e) = pg {
        tracing::warn!(error = %e, "readiness: postgres is down");
        down.push("postgres");
    }
    if let Err(e) = redis {
        tracing::warn!(error = %e, "readiness: redis is down");
        down.push("redis");
    }
    if down.is_empty() {
        Json(serde_json::json!({ "status": "ready", "postgres": "ok", "redis": "ok" }))
            .into_response()
    } else {
        let detail = format!("unavailable: {}", down.join(", "));
        Problem::new(StatusCode::SERVICE_UNAVAILABLE, detail).into_http()
    }
}

/// The Prometheus text exposition.
#[handler]
pub async fn metrics(state: Data<&Arc<AppState>>) -> Response {
    Response::builder()
        .content_type(common::telemetry::metrics::CONTENT_TYPE)
        .body(common::telemetry::metrics::render(&state.registry))
}

async fn check_postgres(state: &AppState) -> Result<(), String> {
    let probe = state.db.execute_unprepared("SELECT 1");
    match tokio::time::timeout(PROBE_TIMEOUT, probe).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("timed out after {PROBE_TIMEOUT:?}")),
    }
}

async fn check_redis(state: &AppState) -> Result<(), String> {
    let mut conn = state.redis.clone();
    let cmd = redis::cmd("PING");
    let probe = cmd.query_async::<String>(&mut conn);
    match tokio::time::timeout(PROBE_TIMEOUT, probe).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("timed out after {PROBE_TIMEOUT:?}")),
    }
}
