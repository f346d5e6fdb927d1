//! AMC reporting routes under `/amc/reporting/{instanceId}/workflowExecutions`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use poem::web::{Data, Path};
use poem::{Request, Response, handler};
use serde_json::{Value, json};

use super::{amc_error, json_response, query_map};
use crate::faults::{FaultRoute, HttpFault, LostAnswer};
use crate::results::{expected_rows, part_count};
use crate::state::{CancelError, Sim, Status, request_key};
use crate::validate::{parse_create, parse_local_time};

const HEADERS: [&str; 3] = [
    "Amazon-Advertising-API-ClientId",
    "Amazon-Advertising-API-AdvertiserId",
    "Amazon-Advertising-API-MarketplaceId",
];
const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 1000;

#[handler]
pub async fn create(
    req: &Request,
    Path(instance): Path<String>,
    body: Bytes,
    Data(sim): Data<&Arc<Sim>>,
) -> Response {
    let bearer = match authorize(sim, req, &instance) {
        Ok(bearer) => bearer,
        Err(resp) => return *resp,
    };
    if let Some(ct) = req.content_type()
        && !ct.contains("json")
    {
        return amc_error(415, &format!("Unsupported Content-Type: {ct}"));
    }
    let spec = match parse_create(&body, sim.clock.now()) {
        Ok(spec) => spec,
        Err(details) => return amc_error(400, &details),
    };
    let key = request_key(&instance, &spec);
    sim.count_submission(&key);
    let after = match inject(sim, FaultRoute::Create, &key, &bearer).await {
        Ok(after) => after,
        Err(resp) => return resp,
    };
    let held_for = match &after {
        Some(HttpFault::HeldAnswer { delay_ms }) => Some(Duration::from_millis(*delay_ms)),
        _ => None,
    };
    let (answer, hold) = sim.create(&instance, spec, &key, held_for.is_some());
    tracing::info!(
        instance.id = %instance,
        execution.id = answer["workflowExecutionId"].as_str().unwrap_or_default(),
        held = hold.is_some(),
        fault = after.as_ref().map(HttpFault::kind),
        "execution created"
    );
    if let Some(release) = hold {
        match held_for {
            Some(d) => {
                let _ = tokio::time::timeout(d, release).await;
            }
            None => {
                let _ = release.await;
            }
        }
    }
    match after {
        Some(HttpFault::LostAnswer(LostAnswer::BadGateway)) => {
            json_response(502, &json!({"message": "Bad Gateway"}))
        }
        Some(HttpFault::LostAnswer(LostAnswer::Drop)) => dropped_connection(),
        Some(HttpFault::LostAnswer(LostAnswer::Timeout { after_ms })) => {
            tokio::time::sleep(Duration::from_millis(after_ms)).await;
            dropped_connection()
        }
        _ => json_response(200, &answer),
    }
}

/// A 200 whose body breaks off: it promises more bytes than it sends, so the server closes
/// the connection mid-answer and the client sees a broken connection, not an id.
fn dropped_connection() -> Response {
    let cut =
        futures::stream::once(async { Ok::<Bytes, std::io::Error>(Bytes::from_static(b"{")) });
    Response::builder()
        .content_type("application/json")
        .header(poem::http::header::CONTENT_LENGTH, "4096")
        .body(poem::Body::from_bytes_stream(cut))
}

#[handler]
pub async fn get_one(
    req: &Request,
    Path((instance, id)): Path<(String, String)>,
    Data(sim): Data<&Arc<Sim>>,
) -> Response {
    if let Err(resp) = guard(sim, req, &instance, FaultRoute::Get, Some(&id)).await {
        return resp;
    }
    let include = flag(&query_map(req), "includeWorkflow");
    match sim.with_run(&instance, &id, |r| r.to_json(include)) {
        Some(v) => json_response(200, &v),
        None => not_found(&id),
    }
}

#[handler]
pub async fn list(
    req: &Request,
    Path(instance): Path<String>,
    Data(sim): Data<&Arc<Sim>>,
) -> Response {
    if let Err(resp) = guard(sim, req, &instance, FaultRoute::List, None).await {
        return resp;
    }
    match list_filter(&query_map(req)) {
        Ok(filter) => json_response(
            200,
            &sim.with_instance(&instance, |runs| filter.apply(runs)),
        ),
        Err(details) => amc_error(400, &details),
    }
}

#[handler]
pub async fn update(
    req: &Request,
    Path((instance, id)): Path<(String, String)>,
    body: Bytes,
    Data(sim): Data<&Arc<Sim>>,
) -> Response {
    if let Err(resp) = guard(sim, req, &instance, FaultRoute::Cancel, Some(&id)).await {
        return resp;
    }
    let wanted = serde_json::from_slice::<Value>(&body).ok();
    if wanted
        .as_ref()
        .and_then(|v| v.get("status"))
        .and_then(Value::as_str)
        != Some("CANCELLED")
    {
        return amc_error(400, "Only an update to status CANCELLED is supported.");
    }
    cancel(sim, &instance, &id)
}

#[handler]
pub async fn delete(
    req: &Request,
    Path((instance, id)): Path<(String, String)>,
    Data(sim): Data<&Arc<Sim>>,
) -> Response {
    if let Err(resp) = guard(sim, req, &instance, FaultRoute::Cancel, Some(&id)).await {
        return resp;
    }
    cancel(sim, &instance, &id)
}

#[handler]
pub async fn download_urls(
    req: &Request,
    Path((instance, id)): Path<(String, String)>,
    Data(sim): Data<&Arc<Sim>>,
) -> Response {
    if let Err(resp) = guard(sim, req, &instance, FaultRoute::DownloadUrls, Some(&id)).await {
        return resp;
    }
    let now = sim.clock.now();
    let Some((status, ready, sql)) = sim.with_run(&instance, &id, |r| {
        (
            r.status,
            r.downloadable_at.is_none_or(|t| t <= now),
            r.spec.sql.clone(),
        )
    }) else {
        return not_found(&id);
    };
    if status != Status::Succeeded || !ready {
        return amc_error(
            sim.settings().unavailable_status,
            &format!("Execution with ID {id} is unavailable for download."),
        );
    }
    let expires =
        sim.clock.now().timestamp_millis().saturating_add(
            i64::try_from(sim.cfg.download_url_ttl.as_millis()).unwrap_or(i64::MAX),
        );
    let parts = part_count(expected_rows(&sql), sim.cfg.parts);
    let urls: Vec<String> = (0..parts)
        .map(|n| super::download::signed_url(sim, &id, n, expires))
        .collect();
    json_response(
        200,
        &json!({"downloadUrls": urls, "metadataDownloadUrls": [], "nextToken": null}),
    )
}

fn cancel(sim: &Sim, instance: &str, id: &str) -> Response {
    match sim.cancel(instance, id) {
        Ok(()) => json_response(200, &json!({})),
        Err(CancelError::NotFound) => not_found(id),
        Err(CancelError::Terminal(s)) => amc_error(
            400,
            &format!(
                "Workflow execution with ID {id} cannot be cancelled because its status is {}.",
                s.as_str()
            ),
        ),
    }
}

fn not_found(id: &str) -> Response {
    amc_error(
        400,
        &format!("Workflow execution with ID {id} does not exist."),
    )
}

/// Headers, bearer token and instance, then any injected fault drawn for `route` on the
/// run `id` (its fault key) or, without one, on the instance: the refusal, if any.
async fn guard(
    sim: &Sim,
    req: &Request,
    instance: &str,
    route: FaultRoute,
    id: Option<&str>,
) -> Result<(), Response> {
    let bearer = authorize(sim, req, instance).map_err(|r| *r)?;
    let key = id.map_or_else(|| instance.to_owned(), |id| sim.fault_key_of(instance, id));
    inject(sim, route, &key, &bearer).await.map(|_| ())
}

/// Headers, bearer token, instance: the bearer token, or the refusal.
fn authorize(sim: &Sim, req: &Request, instance: &str) -> Result<String, Box<Response>> {
    if HEADERS
        .iter()
        .any(|h| req.header(*h).is_none_or(|v| v.trim().is_empty()))
    {
        return Err(Box::new(amc_error(403, "Unauthorized request.")));
    }
    let bearer = req.header("Authorization").and_then(|v| {
        let (scheme, token) = v.trim().split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
    });
    let Some(bearer) = bearer.filter(|b| sim.bearer_ok(b)) else {
        return Err(Box::new(auth_failed(sim)));
    };
    if sim.lock().unknown_instances.contains(instance) {
        return Err(Box::new(amc_error(403, "Unauthorized request.")));
    }
    Ok(bearer.to_owned())
}

/// Draws a fault for `route` on `key`: a refusal, nothing (after any injected delay), or a
/// create-only fault for the caller to apply after creating the run.
pub(crate) async fn inject(
    sim: &Sim,
    route: FaultRoute,
    key: &str,
    bearer: &str,
) -> Result<Option<HttpFault>, Response> {
    let Some(fault) = sim.draw_fault(route, key) else {
        return Ok(None);
    };
    tracing::debug!(
        route = route.as_str(),
        key,
        fault = fault.kind(),
        "fault injected"
    );
    match fault {
        HttpFault::Slow { delay_ms } => {
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            Ok(None)
        }
        HttpFault::ExpiredToken => {
            sim.invalidate_token(bearer);
            Err(auth_failed(sim))
        }
        other => match http_fault_response(&other) {
            Some(resp) => Err(resp),
            None => Ok(Some(other)),
        },
    }
}

/// The answer of a refusing fault (429, 5xx, 504); `None` for the others.
pub(crate) fn http_fault_response(fault: &HttpFault) -> Option<Response> {
    match fault {
        HttpFault::TooManyRequests { retry_after_secs } => Some(
            Response::builder()
                .status(poem::http::StatusCode::TOO_MANY_REQUESTS)
                .header("Retry-After", retry_after_secs.to_string())
                .content_type("application/json")
                .body(json!({"code": "429", "details": "Too Many Requests"}).to_string()),
        ),
        HttpFault::ServerError(code) => Some(amc_error(*code, "Internal Server Error")),
        HttpFault::GatewayTimeout => Some(json_response(
            504,
            &json!({"message": "Endpoint request timed out"}),
        )),
        _ => None,
    }
}

fn auth_failed(sim: &Sim) -> Response {
    if sim.settings().expired_token_status == 403 {
        amc_error(403, "Unauthorized request.")
    } else {
        json_response(
            401,
            &json!({"code": "401", "details": "Authentication failed",
                    "requestId": uuid::Uuid::new_v4().simple().to_string().to_uppercase()}),
        )
    }
}

fn flag(q: &std::collections::HashMap<String, String>, name: &str) -> bool {
    q.get(name).is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// A parsed list query.
struct ListFilter {
    min: Option<chrono::DateTime<chrono::Utc>>,
    max: Option<chrono::DateTime<chrono::Utc>>,
    include_workflow: bool,
    include_cancelled: bool,
    workflow_id: Option<String>,
    limit: usize,
    /// Index (creation order) to continue from.
    from: Option<usize>,
    ascending: bool,
}

fn list_filter(q: &std::collections::HashMap<String, String>) -> Result<ListFilter, String> {
    let tz_name = q.get("timeZone").map_or("UTC", String::as_str);
    let tz: chrono_tz::Tz = tz_name
        .parse()
        .map_err(|_| format!("Invalid timeZone: {tz_name}"))?;
    let time = |name: &str| -> Result<Option<chrono::DateTime<chrono::Utc>>, String> {
        q.get(name)
            .map(|v| {
                parse_local_time(v, tz).ok_or_else(|| {
                    format!("Invalid {name}: '{v}'. Expected format yyyy-MM-ddTHH:mm:ss.")
                })
            })
            .transpose()
    };
    let limit = match q.get("limit") {
        None => DEFAULT_LIMIT,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| format!("Invalid limit: {v}. Must be between 1 and {MAX_LIMIT}."))?,
    };
    let from = match q.get("nextToken").filter(|t| !t.is_empty()) {
        None => None,
        Some(t) => Some(
            t.parse::<usize>()
                .map_err(|_| format!("Invalid nextToken: {t}"))?,
        ),
    };
    Ok(ListFilter {
        min: time("minCreationTime")?,
        max: time("maxCreationTime")?,
        include_workflow: flag(q, "includeWorkflow"),
        include_cancelled: flag(q, "includeCancelled"),
        workflow_id: q.get("workflowId").cloned(),
        limit,
        from,
        ascending: flag(q, "sortAscending"),
    })
}

impl ListFilter {
    fn apply(&self, runs: &[crate::state::Run]) -> Value {
        let keep = |r: &crate::state::Run| {
            self.min.is_none_or(|m| r.created_at >= m)
                && self.max.is_none_or(|m| r.created_at <= m)
                && (self.include_cancelled || r.status != Status::Cancelled)
                && self
                    .workflow_id
                    .as_ref()
                    .is_none_or(|w| *w == r.workflow_id)
        };
        let order: Box<dyn Iterator<Item = usize>> = match (self.ascending, self.from) {
            (true, from) => Box::new(from.unwrap_or(0)..runs.len()),
            (false, from) => {
                Box::new((0..from.map_or(runs.len(), |f| (f + 1).min(runs.len()))).rev())
            }
        };
        let mut picked: Vec<usize> = order
            .filter(|&i| keep(&runs[i]))
            .take(self.limit + 1)
            .collect();
        let next = (picked.len() > self.limit).then(|| picked.pop()).flatten();
        let executions: Vec<Value> = picked
            .iter()
            .map(|&i| runs[i].to_json(self.include_workflow))
            .collect();
        json!({"executions": executions, "nextToken": next.map(|i| i.to_string())})
    }
}
