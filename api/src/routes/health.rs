//! Operational endpoints outside the OpenAPI spec: `/healthz` (alive), `/readyz`
//! (Postgres and Redis answer within 1 s) and `/metrics` (Prometheus text).

use crate::error::Problem;
use crate::state::AppState;
use poem::http::StatusCode;
use poem::web::{Data, Json};
use poem::{IntoResponse, Response, handler};
use std::sync::Arc;

/// 200 `{"status":"ok"}` while the process serves requests.
#[handler]
pub async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// 200 `{"status":"ready"}` when Postgres and Redis answer within 1 s; else 503 naming
/// what is down.
#[handler]
pub async fn readyz(state: Data<&Arc<AppState>>) -> Response {
    let mut conn = state.redis.clone();
    let ping = async move {
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map(|_| ())
    };
    let r = common::readiness::probe(&state.db, ping).await;
    if r.is_ready() {
        Json(serde_json::json!({ "status": "ready", "postgres": "ok", "redis": "ok" }))
            .into_response()
    } else {
        r.log();
        let detail = format!("unavailable: {}", r.names());
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
