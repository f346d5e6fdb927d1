//! Workflow executions under `/amc/reporting/{instanceId}/workflowExecutions`: create (ad hoc
//! or by saved `workflowId`), status, list, cancel and download URLs.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use poem::web::{Data, Path};
use poem::{Request, Response, handler};
use serde_json::{Value, json};

use super::auth::{REPORTING_HEADERS, authorize, guard, inject};
use super::{amc_error, json_response, paging, query_map, unsupported_media};
use crate::faults::{FaultRoute, HttpFault, LostAnswer};
use crate::results::{expected_rows, part_count};
use crate::state::{CancelError, RunSubject, Sim, Status, request_key};
use crate::validate::{CreateContext, parse_create, parse_local_time};

#[handler]
pub async fn create(
    req: &Request,
    Path(instance): Path<String>,
    body: Bytes,
    Data(sim): Data<&Arc<Sim>>,
) -> Response {
    let bearer = match authorize(sim, req, &REPORTING_HEADERS, Some(&instance)) {
        Ok(bearer) => bearer,
        Err(resp) => return *resp,
    };
    if let Some(resp) = unsupported_media(req) {
        return resp;
    }
    let saved_sql = |id: &str| sim.with_catalog(&instance, |c| c.workflow_sql(id));
    let ctx = CreateContext {
        now: sim.clock.now(),
        adhoc_max_bytes: sim.settings().adhoc_max_bytes,
        saved_sql: &saved_sql,
    };
    let spec = match parse_create(&body, &ctx) {
        Ok(spec) => spec,
        Err(details) => return amc_error(400, &details),
    };
    let key = request_key(&instance, &spec);
    sim.count_submission(&key);
    let subject = RunSubject::of(&spec);
    let drawn = inject(
        sim,
        FaultRoute::Create,
        &key,
        Some(&subject.as_subject()),
        &bearer,
    )
    .await;
    let after = match drawn {
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
    let parts = match sim.canned_result(&sql) {
        Some(_) => 1,
        None => part_count(expected_rows(&sql), sim.cfg.parts),
    };
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
    let limit = paging::limit(q)?;
    let from = match paging::next_token(q) {
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
        paging::page_json("executions", executions, next.map(|i| i.to_string()))
    }
}
