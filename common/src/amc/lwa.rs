//! Login with Amazon: exchanging a refresh token for an access token.

use super::client::AmcConfig;
use super::error::AmcError;
use crate::ids::Region;
use std::fmt;
use std::time::Duration;

/// A fresh access token.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenGrant {
    pub access_token: String,
    /// LWA may rotate the refresh token; `None` keeps the old one.
    pub refresh_token: Option<String>,
    pub expires_in: Duration,
}

impl fmt::Debug for TokenGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenGrant")
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LwaError {
    /// The refresh token is revoked, expired or not ours: the user must authorise again.
    /// Holds LWA's `error_description` verbatim.
    #[error("{0}")]
    InvalidGrant(String),
    /// Our client id or secret was refused.
    #[error("LWA refused the client credentials: {0}")]
    InvalidClient(String),
    /// Timeouts, connection errors, 5xx, 429: try again later.
    #[error("Login with Amazon is unavailable: {0}")]
    Transient(String),
    #[error("Login with Amazon answered {status}: {body}")]
    Other { status: u16, body: String },
}

#[derive(Debug, Clone)]
pub struct LwaClient {
    http: reqwest::Client,
    config: AmcConfig,
}

#[derive(serde::Deserialize)]
struct Grant {
    access_token: String,
    refresh_token: Option<String>,
    expires_in: Option<u64>,
}

#[derive(serde::Deserialize, Default)]
struct LwaErrorBody {
    error: Option<String>,
    error_description: Option<String>,
}

impl LwaClient {
    pub fn new(config: AmcConfig) -> Result<Self, AmcError> {
        Ok(Self {
            http: config.http()?,
            config,
        })
    }

    /// Exchanges `refresh_token` for an access token (`grant_type=refresh_token`).
    pub async fn refresh(
        &self,
        region: Region,
        refresh_token: &str,
    ) -> Result<TokenGrant, LwaError> {
        let url = self
            .config
            .lwa_token_url
            .as_deref()
            .unwrap_or(region.lwa_token_url());
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", self.config.client_id.as_str()),
            ("client_secret", self.config.client_secret.as_str()),
        ];
        let resp = self
            .http
            .post(url)
            .form(&form)
            .send()
            .await
            .map_err(|e| LwaError::Transient(e.to_string()))?;
        let status = resp.status().as_u16();
        let body = resp
            .text()
            .await
            .map_err(|e| LwaError::Transient(e.to_string()))?;
        if (200..300).contains(&status) {
            let g: Grant = serde_json::from_str(&body).map_err(|e| LwaError::Other {
                status,
                body: format!("unreadable grant: {e}"),
            })?;
            return Ok(TokenGrant {
                access_token: g.access_token,
                refresh_token: g.refresh_token.filter(|r| r != refresh_token),
                expires_in: Duration::from_secs(g.expires_in.unwrap_or(3600)),
            });
        }
        Err(lwa_error(status, &body))
    }
}

/// Classifies an LWA error answer.
pub fn lwa_error(status: u16, body: &str) -> LwaError {
    let e: LwaErrorBody = serde_json::from_str(body).unwrap_or_default();
    let description = e
        .error_description
        .clone()
        .unwrap_or_else(|| body.trim().to_string());
    match e.error.as_deref() {
        Some("invalid_grant") => LwaError::InvalidGrant(description),
        Some("invalid_client") | Some("unauthorized_client") => {
            LwaError::InvalidClient(description)
        }
        _ if status == 429 || status >= 500 => {
            LwaError::Transient(format!("{status}: {description}"))
        }
        _ => LwaError::Other {
            status,
            body: description,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lwa_errors_keep_their_words() {
        let e = lwa_error(
            400,
            r#"{"error_description":"The request has an invalid grant parameter : refresh_token","error":"invalid_grant"}"#,
        );
        assert_eq!(
            e,
            LwaError::InvalidGrant(
                "The request has an invalid grant parameter : refresh_token".into()
            )
        );
        assert!(matches!(
            lwa_error(
                401,
                r#"{"error_description":"Client authentication failed","error":"invalid_client"}"#
            ),
            LwaError::InvalidClient(_)
        ));
        assert!(matches!(lwa_error(503, "busy"), LwaError::Transient(_)));
        assert!(matches!(
            lwa_error(
                400,
                r#"{"error":"invalid_request","error_description":"Malformed request"}"#
            ),
            LwaError::Other { .. }
        ));
    }
}
