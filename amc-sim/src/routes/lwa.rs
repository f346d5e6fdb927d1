//! `POST /auth/o2/token`: the Login with Amazon refresh-token exchange.

use std::sync::Arc;

use bytes::Bytes;
use poem::web::Data;
use poem::{Request, Response, handler};
use serde_json::json;

use super::json_response;
use crate::faults::{FaultRoute, HttpFault};
use crate::state::{LwaError, Sim, TokenRequest};

#[handler]
pub async fn token(req: &Request, body: Bytes, Data(sim): Data<&Arc<Sim>>) -> Response {
    let Some(parsed) = parse(req, &body) else {
        return lwa_error(LwaError::Request);
    };
    let key = parsed.refresh_token.clone().unwrap_or_default();
    match sim.draw_fault(FaultRoute::Token, &key, None) {
        Some(HttpFault::Slow { delay_ms }) => {
            tokio::time::sleep(std::time::Duration::from_millis(delay_ms)).await;
        }
        Some(fault) => {
            if let Some(resp) = super::auth::http_fault_response(&fault) {
                return resp;
            }
        }
        None => {}
    }
    match sim.exchange(&parsed) {
        Ok((access, refresh, ttl)) => json_response(
            200,
            &json!({"access_token": access, "refresh_token": refresh,
                    "token_type": "bearer", "expires_in": ttl}),
        ),
        Err(e) => lwa_error(e),
    }
}

/// A form body, or JSON when the content type says so or the body looks like an object.
fn parse(req: &Request, body: &[u8]) -> Option<TokenRequest> {
    let is_json = req.content_type().is_some_and(|c| c.contains("json"))
        || body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    if is_json {
        return serde_json::from_slice(body).ok();
    }
    let mut out = TokenRequest::default();
    for (k, v) in url::form_urlencoded::parse(body) {
        let v = Some(v.into_owned());
        match k.as_ref() {
            "grant_type" => out.grant_type = v,
            "refresh_token" => out.refresh_token = v,
            "client_id" => out.client_id = v,
            "client_secret" => out.client_secret = v,
            _ => {}
        }
    }
    Some(out)
}

fn lwa_error(e: LwaError) -> Response {
    match e {
        LwaError::Grant => json_response(
            400,
            &json!({"error_description":
                    "The request has an invalid grant parameter : refresh_token",
                    "error": "invalid_grant"}),
        ),
        LwaError::Client => json_response(
            401,
            &json!({"error_description": "Client authentication failed",
                    "error": "invalid_client"}),
        ),
        LwaError::Request => json_response(
            400,
            &json!({"error_description": "Malformed request", "error": "invalid_request",
                    "error_index": uuid::Uuid::new_v4().to_string()}),
        ),
    }
}
