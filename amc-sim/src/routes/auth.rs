//! Who may call an AMC route (headers, bearer token, advertiser, instance) and the faults
//! injected into each request.

use std::time::Duration;

use poem::{Request, Response};
use serde_json::json;

use super::{amc_error, json_response};
use crate::faults::{FaultRoute, FaultSubject, HttpFault};
use crate::state::Sim;

/// The headers of every reporting and instance call (amc-api.md §1).
pub(crate) const REPORTING_HEADERS: [&str; 3] = [
    "Amazon-Advertising-API-ClientId",
    "Amazon-Advertising-API-AdvertiserId",
    "Amazon-Advertising-API-MarketplaceId",
];
/// The headers of `GET /amc/accounts` (AMC guide "AMC account management": client id and
/// token only).
pub(crate) const ACCOUNT_HEADERS: [&str; 1] = ["Amazon-Advertising-API-ClientId"];
const ADVERTISER_HEADER: &str = "Amazon-Advertising-API-AdvertiserId";

/// Checks, in order: the `headers` are present (else 403), the bearer token is valid (else
/// 401, or 403 per `expired_token_status`), the advertiser is not marked unknown (else 403)
/// and neither is `instance` (else 403). Returns the bearer token.
pub(crate) fn authorize(
    sim: &Sim,
    req: &Request,
    headers: &[&str],
    instance: Option<&str>,
) -> Result<String, Box<Response>> {
    if headers
        .iter()
        .any(|h| req.header(*h).is_none_or(|v| v.trim().is_empty()))
    {
        return Err(Box::new(unauthorized()));
    }
    let bearer = req.header("Authorization").and_then(|v| {
        let (scheme, token) = v.trim().split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
    });
    let Some(bearer) = bearer.filter(|b| sim.bearer_ok(b)) else {
        return Err(Box::new(auth_failed(sim)));
    };
    if req
        .header(ADVERTISER_HEADER)
        .is_some_and(|a| sim.advertiser_unknown(a.trim()))
    {
        return Err(Box::new(unauthorized()));
    }
    if instance.is_some_and(|i| sim.lock().unknown_instances.contains(i)) {
        return Err(Box::new(unauthorized()));
    }
    Ok(bearer.to_owned())
}

/// Authorizes a reporting call, then draws the fault (if any) for `route` on the run `id`
/// (its fault key and create request) or, without one, on the instance: the refusal, if any.
pub(crate) async fn guard(
    sim: &Sim,
    req: &Request,
    instance: &str,
    route: FaultRoute,
    id: Option<&str>,
) -> Result<(), Response> {
    let bearer = authorize(sim, req, &REPORTING_HEADERS, Some(instance)).map_err(|r| *r)?;
    let (key, subject) = match id {
        Some(id) => sim.fault_target_of(instance, id),
        None => (instance.to_owned(), None),
    };
    let subject = subject.as_ref().map(|s| s.as_subject());
    inject(sim, route, &key, subject.as_ref(), &bearer)
        .await
        .map(|_| ())
}

/// Draws a fault for `route` on `key` about `subject`: a refusal, nothing (after any
/// injected delay), or a create-only fault for the caller to apply after creating the run.
pub(crate) async fn inject(
    sim: &Sim,
    route: FaultRoute,
    key: &str,
    subject: Option<&FaultSubject<'_>>,
    bearer: &str,
) -> Result<Option<HttpFault>, Response> {
    let Some(fault) = sim.draw_fault(route, key, subject) else {
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

/// AMC's 403 for a missing header, an unknown advertiser or instance.
fn unauthorized() -> Response {
    amc_error(403, "Unauthorized request.")
}

fn auth_failed(sim: &Sim) -> Response {
    if sim.settings().expired_token_status == 403 {
        unauthorized()
    } else {
        json_response(
            401,
            &json!({"code": "401", "details": "Authentication failed",
                    "requestId": uuid::Uuid::new_v4().simple().to_string().to_uppercase()}),
        )
    }
}
