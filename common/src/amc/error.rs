//! AMC errors, classified from status AND body: AMC answers 400 both for a bad query
//! (permanent) and for "unavailable for download" (not yet).

use std::fmt;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorClass {
    /// 429: wait `Retry-After`; never uses up an attempt.
    RateLimited { retry_after: Option<Duration> },
    /// 5xx (including 504 "Endpoint request timed out"), timeouts, connection errors.
    Transient,
    /// 401, or 403 "Unauthorized": refresh the access token once and retry.
    Auth,
    /// "… is unavailable for download": results not there yet.
    NotYet,
    /// "… does not exist."
    NotFound,
    /// A presigned download URL that has expired (S3's 403).
    UrlExpired,
    /// Validation and other client errors: fail now, keep AMC's words.
    Permanent,
}

/// An AMC call that did not succeed. `message` is AMC's own words where it gave any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmcError {
    pub class: ErrorClass,
    pub status: Option<u16>,
    pub message: String,
}

impl AmcError {
    pub fn transient(message: String) -> Self {
        Self {
            class: ErrorClass::Transient,
            status: None,
            message,
        }
    }

    pub fn is_retryable(&self) -> bool {
        !matches!(self.class, ErrorClass::Permanent | ErrorClass::NotFound)
    }
}

impl fmt::Display for AmcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.status {
            Some(s) => write!(f, "AMC answered {s}: {}", self.message),
            None => write!(f, "AMC call failed: {}", self.message),
        }
    }
}

impl std::error::Error for AmcError {}

/// The human words of an AMC error body: `details`, else `message`, else the body.
fn words(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            ["details", "message", "error_description", "statusReason"]
                .iter()
                .find_map(|k| v.get(k).and_then(|x| x.as_str()).map(str::to_string))
        })
        .unwrap_or_else(|| body.trim().chars().take(2_000).collect())
}

/// Classifies an unsuccessful answer.
pub fn classify(status: u16, body: &str, retry_after: Option<Duration>) -> AmcError {
    let message = words(body);
    let lower = message.to_ascii_lowercase();
    let class = if lower.contains("unavailable for download") {
        ErrorClass::NotYet
    } else if status == 429 {
        ErrorClass::RateLimited { retry_after }
    } else if status >= 500 {
        ErrorClass::Transient
    } else if status == 401 || (status == 403 && lower.contains("unauthorized")) {
        ErrorClass::Auth
    } else if status == 403 && (body.contains("<Error>") || lower.contains("request has expired")) {
        ErrorClass::UrlExpired
    } else if lower.contains("does not exist") {
        ErrorClass::NotFound
    } else if status == 408 {
        ErrorClass::Transient
    } else {
        ErrorClass::Permanent
    };
    AmcError {
        class,
        status: Some(status),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_come_from_status_and_body() {
        let cases: &[(u16, &str, ErrorClass)] = &[
            (
                429,
                r#"{"code":"429","details":"Too Many Requests"}"#,
                ErrorClass::RateLimited { retry_after: None },
            ),
            (500, "{}", ErrorClass::Transient),
            (502, "Bad Gateway", ErrorClass::Transient),
            (
                504,
                r#"{"message":"Endpoint request timed out"}"#,
                ErrorClass::Transient,
            ),
            (
                401,
                r#"{"code":"401","details":"Authentication failed","requestId":"K144"}"#,
                ErrorClass::Auth,
            ),
            (
                403,
                r#"{"code":"403","details":"Unauthorized request."}"#,
                ErrorClass::Auth,
            ),
            (
                404,
                r#"{"code":"404","details":"Execution with ID x is unavailable for download."}"#,
                ErrorClass::NotYet,
            ),
            (
                400,
                r#"{"code":"400","details":"Execution with ID x is unavailable for download."}"#,
                ErrorClass::NotYet,
            ),
            (
                400,
                r#"{"code":"400","details":"Workflow execution with ID x does not exist."}"#,
                ErrorClass::NotFound,
            ),
            (
                403,
                "<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>",
                ErrorClass::UrlExpired,
            ),
            (
                400,
                r#"{"code":"400","details":"Was unable to compile workflow wf_9fbfce61 because it was found to be invalid"}"#,
                ErrorClass::Permanent,
            ),
        ];
        for (status, body, class) in cases {
            assert_eq!(
                &classify(*status, body, None).class,
                class,
                "{status} {body}"
            );
        }
    }

    #[test]
    fn amc_words_are_kept_verbatim() {
        let e = classify(
            400,
            r#"{"code":"400","details":"Was unable to compile workflow wf_1: bad"}"#,
            None,
        );
        assert_eq!(e.message, "Was unable to compile workflow wf_1: bad");
        let e = classify(429, "{}", Some(Duration::from_secs(7)));
        assert_eq!(
            e.class,
            ErrorClass::RateLimited {
                retry_after: Some(Duration::from_secs(7))
            }
        );
    }
}
