//! The `/api/v1` resources, one `#[OpenApi]` impl per file, plus the operational
//! endpoints (`/healthz`, `/readyz`, `/metrics`).

pub mod accounts;
pub mod auth;
pub mod connection;
pub mod executions;
pub mod health;
pub mod instances;
pub mod workflows;

use crate::error::ApiError;
use poem_openapi::Tags;

/// The spec's tags, one per resource.
#[derive(Tags)]
pub enum ApiTags {
    /// Registration, login, token refresh and the current user.
    Auth,
    /// The user's Login-with-Amazon connection.
    Amazon,
    /// AMC accounts (advertiser entity, marketplace, region).
    Accounts,
    /// AMC instances and their concurrency caps.
    Instances,
    /// Saved SQL workflows with `{{placeholders}}`.
    Workflows,
    /// Runs of workflows and their results.
    Executions,
}

/// A required, trimmed, non-empty text field of at most `max` characters.
pub(crate) fn required(field: &str, value: &str, max: usize) -> Result<String, ApiError> {
    let v = value.trim();
    if v.is_empty() {
        return Err(ApiError::field(field, "must not be empty"));
    }
    if v.chars().count() > max {
        return Err(ApiError::field(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    Ok(v.to_string())
}

/// A positive cap (1..=10,000).
pub(crate) fn positive(field: &str, value: i32) -> Result<i32, ApiError> {
    if (1..=10_000).contains(&value) {
        Ok(value)
    } else {
        Err(ApiError::field(field, "must be between 1 and 10000"))
    }
}

/// An IANA time zone name.
pub(crate) fn time_zone(field: &str, value: &str) -> Result<String, ApiError> {
    let v = value.trim();
    v.parse::<chrono_tz::Tz>()
        .map(|_| v.to_string())
        .map_err(|_| {
            ApiError::field(
                field,
                format!("`{v}` is not an IANA time zone such as UTC or America/New_York"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validators_name_their_field() {
        assert_eq!(required("name", "  x ", 10).expect("ok"), "x");
        assert!(
            matches!(required("name", "  ", 10), Err(ApiError::Unprocessable { detail, .. }) if detail.starts_with("name:"))
        );
        assert!(positive("cap", 0).is_err());
        assert_eq!(positive("cap", 10).expect("ok"), 10);
        assert_eq!(
            time_zone("tz", "Europe/Berlin").expect("ok"),
            "Europe/Berlin"
        );
        assert!(time_zone("tz", "Mars/Olympus").is_err());
    }
}
