//! `GET /amc/reporting/{instanceId}/dataSources[/{dataSourceId}]`: a fixed sample of AMC's
//! tables (see [`crate::fixtures::data_sources`]).

use std::sync::Arc;

use poem::web::{Data, Path};
use poem::{Request, Response, handler};

use super::auth::{REPORTING_HEADERS, authorize};
use super::{amc_error, json_response, paging, query_map};
use crate::fixtures;
use crate::state::Sim;

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
    let from = paging::next_token(&q);
    let mut items: Vec<_> = fixtures::data_sources()
        .into_iter()
        .filter(|d| from.is_none_or(|f| d["dataSourceId"].as_str() >= Some(f)))
        .take(limit + 1)
        .collect();
    let next = (items.len() > limit)
        .then(|| items.pop())
        .flatten()
        .and_then(|d| d["dataSourceId"].as_str().map(str::to_owned));
    json_response(200, &paging::page_json("dataSources", items, next))
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
    match fixtures::data_sources()
        .into_iter()
        .find(|d| d["dataSourceId"] == id.as_str())
    {
        Some(d) => json_response(200, &d),
        None => amc_error(400, &format!("Data source with ID {id} does not exist.")),
    }
}
