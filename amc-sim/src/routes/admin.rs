//! Admin API under `/sim/admin`: counters, held create answers, revocation, unknown
//! instances and advertisers, the account and instance fixtures, run-time config and the
//! fault plan.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use poem::web::Data;
use poem::{Response, handler};
use serde::Deserialize;
use serde_json::json;

use super::json_response;
use crate::faults::FaultsDoc;
use crate::fixtures::{self, AmcAccount, AmcInstance};
use crate::state::Sim;

#[handler]
pub async fn stats(Data(sim): Data<&Arc<Sim>>) -> Response {
    json_response(200, &sim.stats())
}

#[handler]
pub async fn hold_next_create(Data(sim): Data<&Arc<Sim>>) -> Response {
    sim.lock().hold_next_create = true;
    json_response(200, &json!({"hold_next_create": true}))
}

#[handler]
pub async fn held(Data(sim): Data<&Arc<Sim>>) -> Response {
    json_response(200, &json!({"held": sim.held_count()}))
}

#[handler]
pub async fn release(Data(sim): Data<&Arc<Sim>>) -> Response {
    json_response(200, &json!({"released": sim.release_held()}))
}

#[derive(Deserialize)]
struct Revoke {
    refresh_token: String,
}

#[handler]
pub async fn revoke(body: Bytes, Data(sim): Data<&Arc<Sim>>) -> Response {
    match serde_json::from_slice::<Revoke>(&body) {
        Ok(r) => {
            sim.lock().tokens.revoke(&r.refresh_token);
            json_response(200, &json!({"revoked": r.refresh_token}))
        }
        Err(e) => bad_request(&e.to_string()),
    }
}

#[derive(Deserialize)]
struct UnknownInstance {
    instance_id: String,
}

#[handler]
pub async fn unknown_instance(body: Bytes, Data(sim): Data<&Arc<Sim>>) -> Response {
    match serde_json::from_slice::<UnknownInstance>(&body) {
        Ok(u) => {
            sim.lock().unknown_instances.insert(u.instance_id.clone());
            json_response(200, &json!({"unknown_instance": u.instance_id}))
        }
        Err(e) => bad_request(&e.to_string()),
    }
}

#[derive(Deserialize)]
struct UnknownAdvertiser {
    advertiser_id: String,
}

/// Marks an advertiser (entity) id unknown: AMC calls carrying it get 403.
#[handler]
pub async fn unknown_advertiser(body: Bytes, Data(sim): Data<&Arc<Sim>>) -> Response {
    match serde_json::from_slice::<UnknownAdvertiser>(&body) {
        Ok(u) => {
            sim.lock()
                .unknown_advertisers
                .insert(u.advertiser_id.clone());
            json_response(200, &json!({"unknown_advertiser": u.advertiser_id}))
        }
        Err(e) => bad_request(&e.to_string()),
    }
}

#[handler]
pub async fn accounts_get(Data(sim): Data<&Arc<Sim>>) -> Response {
    json_response(200, &json!({"amcAccounts": sim.lock().accounts}))
}

/// Replaces what `GET /amc/accounts` lists (a list, or `{"amcAccounts": [...]}`).
#[handler]
pub async fn accounts_set(body: Bytes, Data(sim): Data<&Arc<Sim>>) -> Response {
    match fixtures::parse_list::<AmcAccount>(&body, "amcAccounts") {
        Ok(list) => {
            sim.lock().accounts = list;
            json_response(200, &json!({"amcAccounts": sim.lock().accounts}))
        }
        Err(e) => bad_request(&e),
    }
}

#[handler]
pub async fn instances_get(Data(sim): Data<&Arc<Sim>>) -> Response {
    json_response(200, &json!({"instances": sim.lock().directory}))
}

/// Replaces what `GET /amc/instances` lists (a list, or `{"instances": [...]}`).
#[handler]
pub async fn instances_set(body: Bytes, Data(sim): Data<&Arc<Sim>>) -> Response {
    match fixtures::parse_list::<AmcInstance>(&body, "instances") {
        Ok(list) => {
            sim.lock().directory = list;
            json_response(200, &json!({"instances": sim.lock().directory}))
        }
        Err(e) => bad_request(&e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CannedResult {
    name: String,
    csv: String,
}

/// Sets the CSV a run whose SQL contains `sim_result=<name>` serves (one part, verbatim).
#[handler]
pub async fn result_set(body: Bytes, Data(sim): Data<&Arc<Sim>>) -> Response {
    match serde_json::from_slice::<CannedResult>(&body) {
        Ok(r)
            if crate::results::canned_name(&format!("sim_result={}", r.name)) == Some(&r.name) =>
        {
            let bytes = r.csv.len();
            sim.lock()
                .canned_results
                .insert(r.name.clone(), Bytes::from(r.csv));
            json_response(200, &json!({"name": r.name, "bytes": bytes}))
        }
        Ok(_) => bad_request("name must be letters, digits, `_` or `-`"),
        Err(e) => bad_request(&e.to_string()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigChange {
    run_duration_ms: Option<u64>,
    token_ttl_secs: Option<u64>,
    max_running: Option<usize>,
    expired_token_status: Option<u16>,
    unavailable_status: Option<u16>,
    adhoc_max_bytes: Option<usize>,
}

#[handler]
pub async fn config(body: Bytes, Data(sim): Data<&Arc<Sim>>) -> Response {
    let change = match serde_json::from_slice::<ConfigChange>(&body) {
        Ok(c) => c,
        Err(e) => return bad_request(&e.to_string()),
    };
    if change.max_running == Some(0) {
        return bad_request("max_running must be at least 1");
    }
    if change.adhoc_max_bytes == Some(0) {
        return bad_request("adhoc_max_bytes must be at least 1");
    }
    if change
        .expired_token_status
        .is_some_and(|s| s != 401 && s != 403)
    {
        return bad_request("expired_token_status must be 401 or 403");
    }
    if change
        .unavailable_status
        .is_some_and(|s| s != 404 && s != 400)
    {
        return bad_request("unavailable_status must be 404 or 400");
    }
    sim.update_settings(|s| {
        if let Some(ms) = change.run_duration_ms {
            s.run_duration = Duration::from_millis(ms);
        }
        if let Some(secs) = change.token_ttl_secs {
            s.token_ttl = Duration::from_secs(secs);
        }
        if let Some(n) = change.max_running {
            s.max_running = n;
        }
        if let Some(status) = change.expired_token_status {
            s.expired_token_status = status;
        }
        if let Some(status) = change.unavailable_status {
            s.unavailable_status = status;
        }
        if let Some(n) = change.adhoc_max_bytes {
            s.adhoc_max_bytes = n;
        }
    });
    let s = sim.settings();
    json_response(
        200,
        &json!({
            "run_duration_ms": u64::try_from(s.run_duration.as_millis()).unwrap_or(u64::MAX),
            "token_ttl_secs": s.token_ttl.as_secs(),
            "max_running": s.max_running,
            "expired_token_status": s.expired_token_status,
            "unavailable_status": s.unavailable_status,
            "adhoc_max_bytes": s.adhoc_max_bytes,
        }),
    )
}

fn bad_request(msg: &str) -> Response {
    json_response(400, &json!({"error": msg}))
}

#[handler]
pub async fn faults_get(Data(sim): Data<&Arc<Sim>>) -> Response {
    json_response(200, &sim.faults_json())
}

#[handler]
pub async fn faults_set(body: Bytes, Data(sim): Data<&Arc<Sim>>) -> Response {
    match FaultsDoc::parse(&body) {
        Ok(doc) => {
            sim.set_faults(doc);
            json_response(200, &sim.faults_json())
        }
        Err(e) => bad_request(&e.to_string()),
    }
}

#[handler]
pub async fn faults_clear(Data(sim): Data<&Arc<Sim>>) -> Response {
    sim.set_faults(FaultsDoc::default());
    json_response(200, &sim.faults_json())
}
