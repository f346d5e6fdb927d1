//! Schedules under `/amc/reporting/{instanceId}/schedules`, kept as objects with their fields
//! (AMC guide "Manage a workflow schedule"). The simulator does not run them.

use std::sync::Arc;

use bytes::Bytes;
use poem::web::{Data, Path};
use poem::{Request, Response, handler};
use serde_json::json;

use super::auth::{REPORTING_HEADERS, authorize};
use super::{amc_error, json_response, paging, query_map, unsupported_media, workflows};
use crate::state::{CatalogError, Sim};
use crate::validate::workflow::parse_schedule;

#[handler]
pub async fn create(
    req: &Request,
    Path(instance): Path<String>,
    body: Bytes,
    Data(sim): Data<&Arc<Sim>>,
) -> Response {
    save(req, &instance, None, &body, sim)
}

#[handler]
pub async fn update(
    req: &Request,
    Path((instance, id)): Path<(String, String)>,
    body: Bytes,
    Data(sim): Data<&Arc<Sim>>,
) -> Response {
    save(req, &instance, Some(&id), &body, sim)
}

/// Creates (no `path_id`) or replaces a schedule.
fn save(req: &Request, instance: &str, path_id: Option<&str>, body: &[u8], sim: &Sim) -> Response {
    if let Err(resp) = authorize(sim, req, &REPORTING_HEADERS, Some(instance)) {
        return *resp;
    }
    if let Some(resp) = unsupported_media(req) {
        return resp;
    }
    let def = match parse_schedule(body, path_id, sim.clock.now()) {
        Ok(def) => def,
        Err(details) => return amc_error(400, &details),
    };
    let id = def.id.clone();
    let saved = sim.with_catalog(instance, |c| match path_id {
        None => c.create_schedule(def),
        Some(_) => c.update_schedule(def),
    });
    match saved {
        Ok(()) => json_response(200, &json!({})),
        Err(CatalogError::Exists) => {
            amc_error(400, &format!("Schedule with ID {id} already exists."))
        }
        Err(CatalogError::NoWorkflow(w)) => workflows::not_found(&w),
        Err(_) => not_found(&id),
    }
}

#[handler]
pub async fn get_one(
    req: &Request,
    Path((instance, id)): Path<(String, String)>,
    Data(sim): Data<&Arc<Sim>>,
) -> Response {
    if let Err(resp) = authorize(sim, req, &REPORTING_HEADERS, Some(&instance)) {
        return *resp;
    }
    match sim.with_catalog(&instance, |c| c.schedule(&id)) {
        Some(s) => json_response(200, &json!({"schedule": s})),
        None => not_found(&id),
    }
}

#[handler]
pub async fn list(
    req: &Request,
    Path(instance): Path<String>,
    Data(sim): Data<&Arc<Sim>>,
) -> Response {
    if let Err(resp) = authorize(sim, req, &REPORTING_HEADERS, Some(&instance)) {
        return *resp;
    }
    let q = query_map(req);
    let limit = match paging::limit(&q) {
        Ok(limit) => limit,
        Err(details) => return amc_error(400, &details),
    };
    let page = sim.with_catalog(&instance, |c| c.schedules(paging::next_token(&q), limit));
    json_response(200, &paging::page_json("schedules", page.items, page.next))
}

#[handler]
pub async fn delete(
    req: &Request,
    Path((instance, id)): Path<(String, String)>,
    Data(sim): Data<&Arc<Sim>>,
) -> Response {
    if let Err(resp) = authorize(sim, req, &REPORTING_HEADERS, Some(&instance)) {
        return *resp;
    }
    match sim.with_catalog(&instance, |c| c.delete_schedule(&id)) {
        Ok(()) => json_response(200, &json!({})),
        Err(_) => not_found(&id),
    }
}

fn not_found(id: &str) -> Response {
    amc_error(400, &format!("Schedule with ID {id} does not exist."))
}
