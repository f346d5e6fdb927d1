//! `GET /amc/accounts` and `GET /amc/instances[/{instanceId}]`, from the configured fixtures
//! (AMC guides "AMC account management" and "Instance management").

use std::sync::Arc;

use poem::web::{Data, Path};
use poem::{Request, Response, handler};
use serde_json::{Value, json};

use super::auth::{ACCOUNT_HEADERS, REPORTING_HEADERS, authorize};
use super::{amc_error, json_response};
use crate::state::Sim;

#[handler]
pub async fn accounts(req: &Request, Data(sim): Data<&Arc<Sim>>) -> Response {
    if let Err(resp) = authorize(sim, req, &ACCOUNT_HEADERS, None) {
        return *resp;
    }
    let accounts = sim.lock().accounts.clone();
    json_response(200, &json!({ "amcAccounts": accounts }))
}

#[handler]
pub async fn instances(req: &Request, Data(sim): Data<&Arc<Sim>>) -> Response {
    if let Err(resp) = authorize(sim, req, &REPORTING_HEADERS, None) {
        return *resp;
    }
    let instances = sim.lock().directory.clone();
    json_response(200, &json!({ "instances": instances }))
}

#[handler]
pub async fn instance(
    req: &Request,
    Path(id): Path<String>,
    Data(sim): Data<&Arc<Sim>>,
) -> Response {
    if let Err(resp) = authorize(sim, req, &REPORTING_HEADERS, Some(&id)) {
        return *resp;
    }
    let found = sim
        .lock()
        .directory
        .iter()
        .find(|i| i.instance_id == id)
        .map(|i| serde_json::to_value(i).unwrap_or(Value::Null));
    match found {
        Some(instance) => json_response(200, &json!({ "instance": instance })),
        None => amc_error(400, &format!("Instance with ID {id} does not exist.")),
    }
}
