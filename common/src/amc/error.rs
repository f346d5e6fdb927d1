//! Errors of the AMC and LWA clients, and the classifier that maps an HTTP status plus
//! body (AMC answers 400 both for a bad query and for "unavailable for download") to what
//! the caller should do.

use std::fmt;
use std::time::Duration;

/// What the caller should do about a failed AMC call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorClass {
    /// 429: retry after `retry_after` (from `Retry-After`, seconds or HTTP date) or a
    /// back-off; does not use up an attempt.
    RateLimited { retry_after: Option<Duration> },
    /// 5xx (incl. 504 "Endpoint request timed out"), 408, timeouts, connection errors.
    Transient,
    /// 401, or 403 "Unauthorized": refresh the access token once and retry.
    Auth,
    /// "… is unavailable for download" (whatever the status): results not ready yet.
    NotYet,
    /// 400 "… does not exist." (or 404): the execution is unknown to AMC.
    NotFound,
    /// A presigned result URL expired (S3's 403 with XML): ask for new download URLs.
    UrlExpired,
    /// Any other 4xx (validation, bad SQL) or an unreadable answer: fail now.
    Permanent,
}

/// A failed AMC call: its class, the HTTP status if there was one, and AMC's own words
/// (`details`, else `message`, else the raw body) verbatim.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct AmcError {
    pub class: ErrorClass,
    pub status: Option<u16>,
    pub message: String,
}

impl fmt::Display for AmcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.status {
            Some(status) => write!(f, "AMC answered {status}: {}", self.message),
            None => write!(f, "AMC request failed: {}", self.message),
        }
    }
}

/// Raw bodies kept in messages are cut to this many bytes (JSON `details` never are).
const MAX_RAW_BODY: usize = 2000;

impl AmcError {
    pub fn new(class: ErrorClass, status: Option<u16>, message: impl Into<String>) -> Self {
        Self {
            class,
            status,
            message: message.into(),
        }
    }

    pub(crate) fn permanent(status: Option<u16>, message: impl Into<String>) -> Self {
        Self::new(ErrorClass::Permanent, status, message)
    }

    /// Whether the same request may succeed later without any change (rate limits,
    /// transient failures, results not ready). `Auth` needs a token refresh first and
    /// `UrlExpired` new URLs, so both are `false`; see [`AmcError::needs_token_refresh`].
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.class,
            ErrorClass::RateLimited { .. } | ErrorClass::Transient | ErrorClass::NotYet
        )
    }

    /// Whether the caller should refresh the access token and retry once.
    pub fn needs_token_refresh(&self) -> bool {
        self.class == ErrorClass::Auth
    }

    /// The delay AMC asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self.class {
            ErrorClass::RateLimited { retry_after } => retry_after,
            _ => None,
        }
    }

    /// Classifies a non-success answer from its status, `Retry-After` header and body.
    pub fn from_response(status: u16, retry_after: Option<&str>, body: &str) -> Self {
        let message = body_message(body);
        let class = classify(status, retry_after, body, &message);
        Self {
            class,
            status: Some(status),
            message,
        }
    }

    /// Classifies a transport failure (no answer, or a body that could not be read).
    pub fn from_reqwest(e: &reqwest::Error) -> Self {
        let status = e.status().map(|s| s.as_u16());
        if e.is_builder() {
            return Self::permanent(status, format!("invalid request: {e}"));
        }
        let what = if e.is_timeout() {
            "timed out"
        } else if e.is_connect() {
            "connection failed"
        } else {
            "transport error"
        };
        Self::new(
            ErrorClass::Transient,
            status,
            format!("{what}: {}", error_chain(e)),
        )
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// AMC's words: JSON `details`, else `message`, else the raw body (trimmed, cut).
fn body_message(body: &str) -> String {
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(body) {
        for key in ["details", "message", "error_description", "error"] {
            if let Some(serde_json::Value::String(s)) = map.get(key) {
                return s.clone();
            }
        }
    }
    cut_raw(body)
}

/// The raw body, trimmed and cut to [`MAX_RAW_BODY`] bytes.
fn cut_raw(body: &str) -> String {
    let raw = body.trim();
    if raw.len() <= MAX_RAW_BODY {
        return raw.to_owned();
    }
    let mut cut = MAX_RAW_BODY;
    while !raw.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &raw[..cut])
}

fn looks_like_xml(body: &str) -> bool {
    body.trim_start().starts_with('<')
}

fn classify(status: u16, retry_after: Option<&str>, body: &str, message: &str) -> ErrorClass {
    if body.contains("is unavailable for download") {
        return ErrorClass::NotYet;
    }
    match status {
        429 => ErrorClass::RateLimited {
            retry_after: retry_after.and_then(parse_retry_after),
        },
        401 => ErrorClass::Auth,
        403 if message.contains("Unauthorized") || message.contains("Authentication failed") => {
            ErrorClass::Auth
        }
        403 if looks_like_xml(body) => ErrorClass::UrlExpired,
        408 | 500..=599 => ErrorClass::Transient,
        404 => ErrorClass::NotFound,
        400 if message.contains("does not exist") => ErrorClass::NotFound,
        _ => ErrorClass::Permanent,
    }
}

/// `Retry-After` as delta-seconds or an HTTP date (a date in the past gives zero).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = at.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

/// A failed Login with Amazon token refresh.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LwaError {
    /// The refresh token is revoked, expired or not ours (`invalid_grant`): the user must
    /// connect again. Holds LWA's `error_description` verbatim.
    #[error("Login with Amazon rejected the refresh token: {0}")]
    InvalidGrant(String),
    /// Our client id / secret is wrong (`invalid_client`, `unauthorized_client`).
    #[error("Login with Amazon rejected the client credentials: {0}")]
    InvalidClient(String),
    /// 5xx, 429, timeouts, connection errors: try again later.
    #[error("Login with Amazon is unavailable: {0}")]
    Transient(String),
    /// Anything else (`body` never holds tokens: a success body that could not be read is
    /// described, not echoed).
    #[error("Login with Amazon answered {status}: {body}")]
    Other { status: u16, body: String },
}

impl LwaError {
    /// Classifies an LWA error answer.
    pub fn from_response(status: u16, body: &str) -> Self {
        let json: Option<serde_json::Map<String, serde_json::Value>> =
            serde_json::from_str(body).ok();
        let field = |k: &str| {
            json.as_ref()
                .and_then(|m| m.get(k))
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        };
        let code = field("error").unwrap_or_default();
        let description = field("error_description").unwrap_or_else(|| code.clone());
        match code.as_str() {
            "invalid_grant" => LwaError::InvalidGrant(description),
            "invalid_client" | "unauthorized_client" => LwaError::InvalidClient(description),
            _ if status == 429 || status == 408 || status >= 500 => {
                LwaError::Transient(format!("HTTP {status}: {}", body_message(body)))
            }
            _ => LwaError::Other {
                status,
                body: cut_raw(body),
            },
        }
    }

    pub(crate) fn from_reqwest(e: &reqwest::Error) -> Self {
        LwaError::Transient(AmcError::from_reqwest(e).message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(status: u16, body: &str) -> ErrorClass {
        AmcError::from_response(status, None, body).class
    }

    #[test]
    fn classifier_table() {
        use ErrorClass::*;
        let cases: &[(u16, &str, ErrorClass)] = &[
            (429, "", RateLimited { retry_after: None }),
            (500, "{}", Transient),
            (502, "Bad Gateway", Transient),
            (503, "", Transient),
            (
                504,
                r#"{"message":"Endpoint request timed out"}"#,
                Transient,
            ),
            (408, "", Transient),
            (
                401,
                r#"{"code":"401","details":"Authentication failed","requestId":"K144"}"#,
                Auth,
            ),
            (
                403,
                r#"{"code":"403","details":"Unauthorized request."}"#,
                Auth,
            ),
            (
                403,
                r#"{"code":"403","details":"Authentication failed"}"#,
                Auth,
            ),
            (
                403,
                r#"{"code":"403","details":"Forbidden for this plan"}"#,
                Permanent,
            ),
            (
                403,
                r#"<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"#,
                UrlExpired,
            ),
            (
                400,
                r#"{"code":"400","details":"Execution with ID abc is unavailable for download."}"#,
                NotYet,
            ),
            (
                404,
                r#"{"code":"404","details":"Execution with ID abc is unavailable for download."}"#,
                NotYet,
            ),
            (
                400,
                r#"{"code":"400","details":"Workflow execution with ID xxx does not exist."}"#,
                NotFound,
            ),
            (404, "{}", NotFound),
            (
                400,
                r#"{"code":"400","details":"Was unable to compile workflow wf_9fbfce61 because it was found to be invalid: Filter operation filter_operation referenced an undeclared parameter ad_product_type."}"#,
                Permanent,
            ),
            (
                400,
                r#"{"code":"400","details":"Workflow with ID wf-1 already exists."}"#,
                Permanent,
            ),
            (422, "not json", Permanent),
        ];
        for (status, body, expected) in cases {
            assert_eq!(&class(*status, body), expected, "{status} {body}");
        }
    }

    #[test]
    fn permanent_keeps_amc_words_verbatim() {
        let details = "Was unable to compile workflow wf_9fbfce61 because it was found to be invalid: Filter operation filter_operation referenced an undeclared parameter ad_product_type.";
        let body = format!(r#"{{"code":"400","details":"{details}"}}"#);
        let err = AmcError::from_response(400, None, &body);
        assert_eq!(err.class, ErrorClass::Permanent);
        assert_eq!(err.message, details);
        assert_eq!(err.to_string(), format!("AMC answered 400: {details}"));
        assert!(!err.is_retryable());
        let timeout =
            AmcError::from_response(504, None, r#"{"message":"Endpoint request timed out"}"#);
        assert_eq!(timeout.message, "Endpoint request timed out");
        assert!(timeout.is_retryable());
        let long = "x".repeat(5000);
        assert!(AmcError::from_response(418, None, &long).message.len() < 2100);
    }

    #[test]
    fn retry_after_seconds_and_date() {
        let err = AmcError::from_response(429, Some("7"), "");
        assert_eq!(
            err.class,
            ErrorClass::RateLimited {
                retry_after: Some(Duration::from_secs(7))
            }
        );
        assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
        assert!(err.is_retryable());
        let at = (chrono::Utc::now() + chrono::Duration::seconds(120)).to_rfc2822();
        let got = parse_retry_after(&at).unwrap();
        assert!(
            got > Duration::from_secs(100) && got <= Duration::from_secs(120),
            "{got:?}"
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(
            AmcError::from_response(429, Some("soon"), "").retry_after(),
            None
        );
    }

    #[test]
    fn helpers() {
        let auth = AmcError::from_response(401, None, "");
        assert!(auth.needs_token_refresh() && !auth.is_retryable());
        assert!(
            AmcError::from_response(
                400,
                None,
                "Execution with ID a is unavailable for download."
            )
            .is_retryable()
        );
        assert!(!AmcError::from_response(403, None, "<Error/>").is_retryable());
    }

    #[test]
    fn lwa_errors() {
        let grant = r#"{"error_description":"The request has an invalid grant parameter : refresh_token","error":"invalid_grant"}"#;
        assert_eq!(
            LwaError::from_response(400, grant),
            LwaError::InvalidGrant(
                "The request has an invalid grant parameter : refresh_token".into()
            )
        );
        let revoked = r#"{"error_description":"The request has an invalid grant parameter : refresh_token. User may have revoked or didn't grant the permission.","error":"invalid_grant"}"#;
        assert!(
            matches!(LwaError::from_response(400, revoked), LwaError::InvalidGrant(d) if d.ends_with("permission."))
        );
        let client =
            r#"{"error_description":"Client authentication failed","error":"invalid_client"}"#;
        assert_eq!(
            LwaError::from_response(401, client),
            LwaError::InvalidClient("Client authentication failed".into())
        );
        let malformed = r#"{"error_description":"Malformed request","error":"invalid_request","error_index":"x"}"#;
        assert_eq!(
            LwaError::from_response(400, malformed),
            LwaError::Other {
                status: 400,
                body: malformed.into()
            }
        );
        assert!(matches!(
            LwaError::from_response(503, "down"),
            LwaError::Transient(_)
        ));
        assert!(matches!(
            LwaError::from_response(429, ""),
            LwaError::Transient(_)
        ));
    }
}
