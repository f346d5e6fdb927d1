//! The API's metrics (`common::telemetry::metrics`) and traces: every answered request
//! counted and timed by method, route template and status, in a span of its own
//! (`http.request`, named by its route template) that continues a caller's `traceparent`
//! and is the root of the trace of whatever the request starts (`telemetry::trace`).

use crate::allow::AllowTable;
use common::telemetry::metrics::HttpMetrics;
use common::telemetry::trace;
use poem::{Endpoint, IntoResponse, Request, Response};
use std::sync::Arc;
use std::time::Instant;
use tracing::Instrument;

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
    let span = tracing::info_span!(
        "http.request",
        otel.name = %format!("{method} {route}"),
        otel.kind = "server",
        http.request.method = method,
        http.route = route,
        http.response.status_code = tracing::field::Empty,
        // What a create records (`CreateBatcher::run`), so its log lines name the run.
        workflow.id = tracing::field::Empty,
        execution.id = tracing::field::Empty,
    );
    let incoming = req
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let root = trace::continue_from(&span, incoming.as_deref());
    let resp = trace::scope(root, ep.get_response(req).instrument(span.clone()))
        .await
        .into_response();
    span.record("http.response.status_code", resp.status().as_u16());
    metrics.record(method, route, resp.status().as_u16(), start.elapsed());
    Ok(resp)
}
