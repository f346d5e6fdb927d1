//! Saved workflows under `/amc/reporting/{instanceId}/workflows`: create, get, update, list
//! and delete (AMC guide "Manage a workflow"; amc-api.md §4).

use std::sync::Arc;

use bytes::Bytes;
use poem::web::{Data, Path};
use poem::{Request, Response, handler};
use serde_json::json;

use super::auth::{REPORTING_HEADERS, authorize};
use super::{amc_error, json_response, paging, query_map, unsupported_media};
use crate::state::{CatalogError, Sim};
use crate::validate::workflow::parse_workflow;

#[handler]
pub async fn create(
    req: &Request,
    Path(instance): Path<String>,
    body: Bytes,
    Data(sim): Data<&Arc<Sim>>,
) -> Response {
    if let Err(resp) = authorize(sim, req, &REPORTING_HEADERS, Some(&instance)) {
        return *resp;
    }
    if let Some(resp) = unsupported_media(req) {
        return resp;
    }
    let def = match parse_workflow(&body, None) {
        Ok(def) => def,
        Err(details) => return amc_error(400, &details),
    };
    let id = def.id.clone();
    match sim.with_catalog(&instance, |c| c.create_workflow(def)) {
        Ok(()) => {
            sim.lock().workflow_creates += 1;
            json_response(200, &json!({}))
        }
        Err(_) => already_exists(&id),
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
    match sim.with_catalog(&instance, |c| c.workflow(&id)) {
        Some(w) => json_response(200, &json!({"workflow": w})),
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
    let page = sim.with_catalog(&instance, |c| c.workflows(paging::next_token(&q), limit));
    json_response(200, &paging::page_json("workflows", page.items, page.next))
}

#[handler]
pub async fn update(
    req: &Request,
    Path((instance, id)): Path<(String, String)>,
    body: Bytes,
    Data(sim): Data<&Arc<Sim>>,
) -> Response {
    if let Err(resp) = authorize(sim, req, &REPORTING_HEADERS, Some(&instance)) {
        return *resp;
    }
    if let Some(resp) = unsupported_media(req) {
        return resp;
    }
    let def = match parse_workflow(&body, Some(&id)) {
        Ok(def) => def,
        Err(details) => return amc_error(400, &details),
    };
    match sim.with_catalog(&instance, |c| c.update_workflow(def)) {
        Ok(()) => {
            sim.lock().workflow_updates += 1;
            json_response(200, &json!({}))
        }
        Err(_) => not_found(&id),
    }
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
    match sim.with_catalog(&instance, |c| c.delete_workflow(&id)) {
        Ok(()) => {
            sim.lock().workflow_deletes += 1;
            json_response(200, &json!({}))
        }
        Err(CatalogError::InUse(schedule)) => amc_error(
            400,
            &format!(
                "Workflow with ID {id} cannot be deleted because it is referenced by schedule {schedule}."
            ),
        ),
        Err(_) => not_found(&id),
    }
}

/// AMC's duplicate-id error. The text is the one the AWS solution matches to fall back to an
/// update; it reads it from `message`, so the body carries it there as well as in `details`.
fn already_exists(id: &str) -> Response {
    let text = format!("Workflow with ID {id} already exists.");
    json_response(
        400,
        &json!({"code": "400", "details": text, "message": text}),
    )
}

/// The error for an unknown workflow id (the same words as for a create by `workflowId`).
pub(crate) fn not_found(id: &str) -> Response {
    amc_error(400, &format!("Workflow with ID {id} does not exist."))
}
