//! The API's metrics (`common::telemetry::metrics`): every answered request counted and
//! timed by method, route template and status.

use crate::allow::AllowTable;
use common::telemetry::metrics::HttpMetrics;
use poem::{Endpoint, IntoResponse, Request, Response};
use std::sync::Arc;
use std::time::Instant;

/// Middleware body recording every request (method label limited to the standard verbs;
/// a path no route matches is `unmatched`).
pub async fn metrics_layer<E: Endpoint>(
    ep: Arc<E>,
    req: Request,
    metrics: Arc<HttpMetrics>,
    routes: Arc<AllowTable>,
) -> poem::Result<Response> {
    let method: &'static str = match req.method().as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        _ => "OTHER",
    };
    let route = routes.template(req.uri().path()).unwrap_or("unmatched");
    let start = Instant::now();
    let resp = ep.get_response(req).await.into_response();
    metrics.record(method, route, resp.status().as_u16(), start.elapsed());
    Ok(resp)
}
