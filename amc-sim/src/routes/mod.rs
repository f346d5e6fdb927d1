//! HTTP routes: LWA, AMC reporting, result downloads and the admin API.

mod admin;
mod amc;
mod download;
mod lwa;

use std::collections::HashMap;
use std::sync::Arc;

use poem::http::StatusCode;
use poem::{EndpointExt, Request, Response, Route, get, post};
use serde_json::{Value, json};

use crate::state::Sim;

/// The whole application.
pub fn app(sim: Arc<Sim>) -> impl poem::Endpoint {
    let base = "/amc/reporting/:instance/workflowExecutions";
    Route::new()
        .at("/auth/o2/token", post(lwa::token))
        .at(base, post(amc::create).get(amc::list))
        .at(
            format!("{base}/:id"),
            get(amc::get_one).put(amc::update).delete(amc::delete),
        )
        .at(format!("{base}/:id/downloadUrls"), get(amc::download_urls))
        .at("/sim/results/:id/:file", get(download::result_file))
        .at("/sim/admin/stats", get(admin::stats))
        .at("/sim/admin/hold-next-create", post(admin::hold_next_create))
        .at("/sim/admin/held", get(admin::held))
        .at("/sim/admin/release", post(admin::release))
        .at("/sim/admin/revoke", post(admin::revoke))
        .at("/sim/admin/unknown-instance", post(admin::unknown_instance))
        .at("/sim/admin/config", post(admin::config))
        .at(
            "/sim/admin/faults",
            get(admin::faults_get)
                .post(admin::faults_set)
                .delete(admin::faults_clear),
        )
        .data(sim)
}

/// A JSON response.
pub(crate) fn json_response(status: u16, body: &Value) -> Response {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .content_type("application/json")
        .body(body.to_string())
}

/// AMC's error body `{"code":"<status>","details":…}`.
pub(crate) fn amc_error(status: u16, details: &str) -> Response {
    json_response(
        status,
        &json!({"code": status.to_string(), "details": details}),
    )
}

/// The query string as a map (last value wins).
pub(crate) fn query_map(req: &Request) -> HashMap<String, String> {
    url::form_urlencoded::parse(req.uri().query().unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}
