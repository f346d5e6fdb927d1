//! HTTP routes: LWA, AMC reporting (executions, saved workflows, schedules, data sources),
//! accounts and instances, result downloads and the admin API. Every error is a JSON body,
//! poem's own 404 and 405 included (AMC's error model is `{"code","details"}`).

mod admin;
mod auth;
mod data_sources;
mod directory;
mod download;
mod executions;
mod lwa;
mod paging;
mod schedules;
mod workflows;

use std::collections::HashMap;
use std::sync::Arc;

use poem::http::StatusCode;
use poem::{EndpointExt, Request, Response, Route, get, post};
use serde_json::{Value, json};

use crate::state::Sim;

/// The whole application.
pub fn app(sim: Arc<Sim>) -> impl poem::Endpoint {
    let reporting = "/amc/reporting/:instance";
    let base = format!("{reporting}/workflowExecutions");
    Route::new()
        .at("/auth/o2/token", post(lwa::token))
        .at("/amc/accounts", get(directory::accounts))
        .at("/amc/instances", get(directory::instances))
        .at("/amc/instances/:id", get(directory::instance))
        .at(&base, post(executions::create).get(executions::list))
        .at(
            format!("{base}/:id"),
            get(executions::get_one)
                .put(executions::update)
                .delete(executions::delete),
        )
        .at(
            format!("{base}/:id/downloadUrls"),
            get(executions::download_urls),
        )
        .at(
            format!("{reporting}/workflows"),
            post(workflows::create).get(workflows::list),
        )
        .at(
            format!("{reporting}/workflows/:id"),
            get(workflows::get_one)
                .put(workflows::update)
                .delete(workflows::delete),
        )
        .at(
            format!("{reporting}/schedules"),
            post(schedules::create).get(schedules::list),
        )
        .at(
            format!("{reporting}/schedules/:id"),
            get(schedules::get_one)
                .put(schedules::update)
                .delete(schedules::delete),
        )
        .at(format!("{reporting}/dataSources"), get(data_sources::list))
        .at(
            format!("{reporting}/dataSources/:id"),
            get(data_sources::get_one),
        )
        .at("/sim/results/:id/:file", get(download::result_file))
        .at("/sim/admin/stats", get(admin::stats))
        .at("/sim/admin/hold-next-create", post(admin::hold_next_create))
        .at("/sim/admin/held", get(admin::held))
        .at("/sim/admin/release", post(admin::release))
        .at("/sim/admin/revoke", post(admin::revoke))
        .at("/sim/admin/unknown-instance", post(admin::unknown_instance))
        .at(
            "/sim/admin/unknown-advertiser",
            post(admin::unknown_advertiser),
        )
        .at(
            "/sim/admin/accounts",
            get(admin::accounts_get).post(admin::accounts_set),
        )
        .at(
            "/sim/admin/instances",
            get(admin::instances_get).post(admin::instances_set),
        )
        .at("/sim/admin/config", post(admin::config))
        .at("/sim/admin/results", post(admin::result_set))
        .at(
            "/sim/admin/faults",
            get(admin::faults_get)
                .post(admin::faults_set)
                .delete(admin::faults_clear),
        )
        .data(sim)
        .catch_all_error(error_body)
}

/// poem's own errors (no such route 404, wrong method 405, an unreadable request) as AMC's
/// JSON error body, so no client meets a `text/plain` answer.
async fn error_body(err: poem::Error) -> Response {
    let status = err.status();
    let details = match status {
        StatusCode::NOT_FOUND => "Not Found".to_owned(),
        StatusCode::METHOD_NOT_ALLOWED => "Method Not Allowed".to_owned(),
        _ => err.to_string(),
    };
    if status.is_server_error() {
        tracing::error!(error = %err, "request failed");
    }
    amc_error(status.as_u16(), &details)
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

/// AMC's 415 for a body that is not JSON (no Content-Type is fine: the official notebook
/// sends none); shared by every route with a body.
pub(crate) fn unsupported_media(req: &Request) -> Option<Response> {
    req.content_type()
        .filter(|ct| !ct.contains("json"))
        .map(|ct| amc_error(415, &format!("Unsupported Content-Type: {ct}")))
}

/// The query string as a map (last value wins).
pub(crate) fn query_map(req: &Request) -> HashMap<String, String> {
    url::form_urlencoded::parse(req.uri().query().unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}
