//! The one error type of the API, answered as RFC 9457 `application/problem+json`.
//!
//! Handlers return `Result<_, ApiError>`; [`problem_layer`] turns every other error
//! response (poem's own parse, auth, routing and size failures) into the same shape.

use common::repo::RepoError;
use poem::http::{StatusCode, header};
use poem::{Endpoint, IntoResponse, Request, Response};
use poem_openapi::registry::{MetaHeader, MetaMediaType, MetaResponse, MetaResponses, Registry};
use poem_openapi::types::Type;
use poem_openapi::{ApiResponse, Object};
use serde::Serialize;
use std::sync::Arc;

/// The problem+json media type.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// One invalid field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Object)]
pub struct FieldError {
    /// The field's name, as in the request body (e.g. `region`).
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

/// An RFC 9457 problem details body.
#[derive(Debug, Clone, Serialize, Object)]
pub struct Problem {
    /// A URI naming the problem type (`about:blank`: the title is the HTTP status phrase).
    #[oai(rename = "type")]
    #[serde(rename = "type")]
    pub type_: String,
    /// Short summary: the HTTP status phrase.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong in this request.
    pub detail: String,
    /// The invalid fields (422 only).
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
}

impl Problem {
    /// A problem for `status` with this detail.
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            type_: "about:blank".into(),
            title: status.canonical_reason().unwrap_or("Error").into(),
            status: status.as_u16(),
            detail: detail.into(),
            errors: None,
        }
    }

    /// The HTTP response carrying this problem.
    pub fn into_http(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_else(|_| b"{}".to_vec());
        let mut resp = Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, PROBLEM_JSON)
            .body(body);
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        resp
    }
}

/// Every failure a handler can answer. Build one with the helper constructors
/// (`ApiError::not_found("workflow")`, `ApiError::field("region", "…")`, …) or `?` on a
/// [`RepoError`] (not found → 404, unique key → 409, other → 500).
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// 410: the resource existed and was removed for good (expired results).
    #[error("{0}")]
    Gone(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    /// 422: the request is well-formed but invalid; `errors` names the fields.
    #[error("{detail}")]
    Unprocessable {
        detail: String,
        errors: Vec<FieldError>,
    },
    /// 429: try again after `retry_after_secs` (sent as `Retry-After`).
    #[error("{detail}")]
    TooManyRequests {
        detail: String,
        retry_after_secs: u64,
    },
    #[error("{0}")]
    Unavailable(String),
    /// 500: logged with its whole cause chain, answered with a generic detail.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    /// 404 `"<what> not found"`.
    pub fn not_found(what: &str) -> Self {
        ApiError::NotFound(format!("{what} not found"))
    }

    /// 409 with this detail.
    pub fn conflict(detail: impl Into<String>) -> Self {
        ApiError::Conflict(detail.into())
    }

    /// 410 with this detail.
    pub fn gone(detail: impl Into<String>) -> Self {
        ApiError::Gone(detail.into())
    }

    /// 422 naming one invalid field: detail `"<field>: <message>"`.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        ApiError::Unprocessable {
            detail: format!("{field}: {message}"),
            errors: vec![FieldError {
                field: field.into(),
                message,
            }],
        }
    }

    /// 422 with a detail of its own (e.g. an upstream service's words) and no field list.
    pub fn unprocessable(detail: impl Into<String>) -> Self {
        ApiError::Unprocessable {
            detail: detail.into(),
            errors: Vec::new(),
        }
    }

    /// 401 with this detail.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        ApiError::Unauthorized(detail.into())
    }

    /// 500 from any error (kept as the cause, logged once when answered).
    pub fn internal(e: impl Into<anyhow::Error>) -> Self {
        ApiError::Internal(e.into())
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Gone(_) => StatusCode::GONE,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The problem body of this error (a 5xx is logged here, with its cause chain).
    pub fn to_problem(&self) -> Problem {
        let status = self.status();
        match self {
            ApiError::Internal(e) => {
                tracing::error!(error = format!("{e:#}"), "request failed");
                Problem::new(status, "an internal error occurred; it has been logged")
            }
            ApiError::Unprocessable { detail, errors } => Problem {
                errors: (!errors.is_empty()).then(|| errors.clone()),
                ..Problem::new(status, detail.clone())
            },
            other => Problem::new(status, other.to_string()),
        }
    }
}

impl ApiError {
    /// The whole HTTP answer: the problem body, plus `Retry-After` on a 429.
    pub fn response(&self) -> Response {
        let mut resp = self.to_problem().into_http();
        if let ApiError::TooManyRequests {
            retry_after_secs, ..
        } = self
        {
            resp.headers_mut().insert(
                header::RETRY_AFTER,
                header::HeaderValue::from(*retry_after_secs),
            );
        }
        resp
    }
}

impl From<RepoError> for ApiError {
    fn from(e: RepoError) -> Self {
        match e {
            RepoError::NotFound => ApiError::NotFound("not found".into()),
            RepoError::Conflict(m) => ApiError::Conflict(m),
            RepoError::Check(c) => {
                ApiError::Internal(anyhow::anyhow!("check constraint {c} refused a write"))
            }
            RepoError::Db(e) => ApiError::Internal(anyhow::Error::new(e).context("database query")),
        }
    }
}

impl poem::error::ResponseError for ApiError {
    fn status(&self) -> StatusCode {
        ApiError::status(self)
    }

    fn as_response(&self) -> Response {
        self.to_problem().into_http()
    }
}

/// Statuses an operation can answer with, as bits of [`Errors`]' mask.
pub mod status {
    /// A malformed request: the body is not JSON (or not an object), a header is bad.
    pub const E400: u32 = 1 << 0;
    /// Missing, invalid or expired credentials.
    pub const E401: u32 = 1 << 1;
    /// Not found, or owned by another user.
    pub const E404: u32 = 1 << 2;
    /// Conflicts with the resource's current state.
    pub const E409: u32 = 1 << 3;
    /// The body is larger than the API takes.
    pub const E413: u32 = 1 << 4;
    /// The body is not `application/json`.
    pub const E415: u32 = 1 << 5;
    /// A field is invalid; `errors` names it.
    pub const E422: u32 = 1 << 6;
    /// Too many attempts; `Retry-After` says when to try again.
    pub const E429: u32 = 1 << 7;
    /// A service this operation needs is unavailable.
    pub const E503: u32 = 1 << 8;
    /// Existed, and was removed for good.
    pub const E410: u32 = 1 << 9;
    /// What every operation with a JSON body can answer.
    pub const BODY: u32 = E400 | E413 | E415 | E422;
    /// What every operation behind bearer authentication can answer.
    pub const AUTH: u32 = E401;

    /// Each bit with its status and description.
    pub(crate) const ALL: [(u32, u16, &str); 10] = [
        (E400, 400, "Malformed request (not JSON, or a bad header)"),
        (E401, 401, "Missing, invalid or expired credentials"),
        (E404, 404, "Not found (or owned by another user)"),
        (E409, 409, "Conflicts with the current state"),
        (
            E410,
            410,
            "Removed for good (e.g. results past their retention)",
        ),
        (E413, 413, "Request body too large"),
        (E415, 415, "Request body is not application/json"),
        (E422, 422, "Invalid field values; `errors` names them"),
        (E429, 429, "Too many attempts; see Retry-After"),
        (E503, 503, "A service this operation needs is unavailable"),
    ];
}

/// The errors of one operation: an [`ApiError`] whose possible statuses, the bits of `S`
/// (see [`status`]), are what the spec lists for it (plus 500). Built from any
/// `ApiError` with `?` or `.into()`.
#[derive(Debug)]
pub struct Errors<const S: u32>(pub ApiError);

impl<const S: u32> From<ApiError> for Errors<S> {
    fn from(e: ApiError) -> Self {
        let code = e.status().as_u16();
        if code != 500
            && !status::ALL
                .iter()
                .any(|(bit, c, _)| *c == code && S & bit != 0)
        {
            tracing::error!(status = code, detail = %e, "an operation answered a status its spec does not list");
        }
        Self(e)
    }
}

impl<const S: u32> From<RepoError> for Errors<S> {
    fn from(e: RepoError) -> Self {
        ApiError::from(e).into()
    }
}

impl<const S: u32> std::fmt::Display for Errors<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl<const S: u32> std::error::Error for Errors<S> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

impl<const S: u32> poem::error::ResponseError for Errors<S> {
    fn status(&self) -> StatusCode {
        self.0.status()
    }

    fn as_response(&self) -> Response {
        self.0.response()
    }
}

fn problem_content() -> Vec<MetaMediaType> {
    vec![MetaMediaType {
        content_type: PROBLEM_JSON,
        schema: Problem::schema_ref(),
    }]
}

/// The `Retry-After` header every 429 carries ([`ApiError::response`]).
fn retry_after_header() -> MetaHeader {
    MetaHeader {
        name: "Retry-After".into(),
        description: Some("Seconds to wait before trying again".into()),
        required: true,
        deprecated: false,
        schema: u64::schema_ref(),
    }
}

impl<const S: u32> ApiResponse for Errors<S> {
    fn meta() -> MetaResponses {
        let mut responses: Vec<MetaResponse> = status::ALL
            .iter()
            .filter(|(bit, _, _)| S & bit != 0)
            .map(|(_, code, description)| MetaResponse {
                description,
                status: Some(*code),
                status_range: None,
                content: problem_content(),
                headers: if *code == 429 {
                    vec![retry_after_header()]
                } else {
                    vec![]
                },
            })
            .collect();
        responses.push(MetaResponse {
            description: "Internal error (logged; the body says nothing more)",
            status: Some(500),
            status_range: None,
            content: problem_content(),
            headers: vec![],
        });
        MetaResponses { responses }
    }

    fn register(registry: &mut Registry) {
        Problem::register(registry);
    }
}

/// Middleware body: every error answer becomes problem+json. poem-openapi's parameter
/// errors become 422 naming the parameter, its body errors 400, its auth errors 401 with
/// a detail of our own; other plain error responses (404/405 routing, 413, 5xx) are
/// rewrapped, and a 405 gets the `Allow` header of its path.
pub async fn problem_layer<E: Endpoint>(
    ep: Arc<E>,
    req: Request,
    allow: Arc<crate::allow::AllowTable>,
) -> poem::Result<Response> {
    let path = req.uri().path().to_owned();
    let resp = match ep.call(req).await {
        Ok(r) => r.into_response(),
        Err(e) => from_poem_error(e, &path, &allow),
    };
    let mut resp = to_problem(resp).await;
    if resp.status() == StatusCode::METHOD_NOT_ALLOWED
        && let Some(methods) = allow.allowed(&path)
        && let Ok(v) = header::HeaderValue::from_str(&methods)
    {
        resp.headers_mut().insert(header::ALLOW, v);
    }
    Ok(resp)
}

/// The answer to an error poem or poem-openapi raised before (or instead of) a handler.
fn from_poem_error(e: poem::Error, path: &str, routes: &crate::allow::AllowTable) -> Response {
    use poem_openapi::error::{
        AuthorizationError, ParseParamError, ParsePathError, ParseRequestPayloadError,
    };
    if let Some(p) = e.downcast_ref::<ParseParamError>() {
        return ApiError::field(p.name, format!("is not valid ({})", p.reason)).response();
    }
    if let Some(p) = e.downcast_ref::<ParsePathError>() {
        let index = p.name.strip_prefix("param").and_then(|n| n.parse().ok());
        let name = index
            .and_then(|i| routes.param_name(path, i))
            .unwrap_or_else(|| p.name.to_string());
        return ApiError::field(&name, format!("is not valid ({})", p.reason)).response();
    }
    if let Some(p) = e.downcast_ref::<ParseRequestPayloadError>() {
        return ApiError::BadRequest(format!("could not parse the request body: {}", p.reason))
            .response();
    }
    if e.is::<AuthorizationError>() {
        return ApiError::unauthorized("missing or invalid bearer token").response();
    }
    e.into_response()
}

/// Converts a non-problem error response into problem+json; other responses pass.
pub async fn to_problem(resp: Response) -> Response {
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let is_problem = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with(PROBLEM_JSON));
    if is_problem {
        return resp;
    }
    let body = resp.into_body().into_string().await.unwrap_or_default();
    let detail = match status {
        StatusCode::UNAUTHORIZED => "missing or invalid bearer token".to_string(),
        StatusCode::NOT_FOUND if body.trim().is_empty() || body.trim() == "not found" => {
            "no such resource".to_string()
        }
        StatusCode::METHOD_NOT_ALLOWED => "method not allowed on this resource".to_string(),
        s if s.is_server_error() => {
            if !body.is_empty() {
                tracing::error!(status = s.as_u16(), error = %body, "request failed");
            }
            "an internal error occurred; it has been logged".to_string()
        }
        s if body.trim().is_empty() => s.canonical_reason().unwrap_or("error").to_string(),
        _ => body.trim().to_string(),
    };
    Problem::new(status, detail).into_http()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_errors_name_the_field() {
        let p = ApiError::field("region", "expected NA, EU or FE").to_problem();
        assert_eq!(p.status, 422);
        assert_eq!(p.detail, "region: expected NA, EU or FE");
        let errors = p.errors.expect("errors");
        assert_eq!(errors[0].field, "region");
        let json = serde_json::to_value(Problem::new(StatusCode::NOT_FOUND, "x")).expect("json");
        assert_eq!(json["type"], "about:blank");
        assert_eq!(json["title"], "Not Found");
        assert!(json.get("errors").is_none());
    }

    #[test]
    fn internal_errors_hide_their_cause() {
        let e = ApiError::internal(anyhow::anyhow!("password=hunter2 leaked"));
        let p = e.to_problem();
        assert_eq!(p.status, 500);
        assert!(!p.detail.contains("hunter2"));
    }

    #[tokio::test]
    async fn plain_text_errors_become_problems() {
        let resp = Response::builder()
            .status(StatusCode::BAD_REQUEST)
            .body("parse request payload error: expected value at line 1");
        let resp = to_problem(resp).await;
        assert_eq!(
            resp.headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok()),
            Some(PROBLEM_JSON)
        );
        let body: serde_json::Value =
            serde_json::from_str(&resp.into_body().into_string().await.expect("body"))
                .expect("json");
        assert_eq!(body["status"], 400);
        assert!(
            body["detail"]
                .as_str()
                .unwrap_or("")
                .contains("expected value")
        );
    }
}
