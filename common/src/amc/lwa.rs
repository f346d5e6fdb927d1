//! Login with Amazon: exchanging a refresh token for an access token.

use super::error::{AmcError, LwaError};
use super::{AmcConfig, http_client};
use crate::ids::Region;
use crate::telemetry::metrics::AmcOperation;
use std::fmt;
use std::time::Duration;

/// A fresh access token. `Debug` shows no token.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenGrant {
    pub access_token: String,
    /// LWA may return a (rotated) refresh token; `None` keeps the old one.
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

/// Calls LWA's token endpoint (the region's, or `AmcConfig::lwa_token_url`). Clone is cheap.
#[derive(Debug, Clone)]
pub struct LwaClient {
    http: reqwest::Client,
    config: AmcConfig,
}

#[derive(serde::Deserialize)]
struct Grant {
    access_token: String,
    refresh_token: Option<String>,
    expires_in: u64,
}

impl LwaClient {
    pub fn new(config: AmcConfig) -> Result<Self, AmcError> {
        Ok(Self {
            http: http_client(&config)?,
            config,
        })
    }

    pub(crate) fn with_http(http: reqwest::Client, config: AmcConfig) -> Self {
        Self { http, config }
    }

    /// Exchanges `refresh_token` for an access token: a form-urlencoded POST of
    /// `grant_type=refresh_token`, `refresh_token`, `client_id`, `client_secret`.
    #[tracing::instrument(name = "lwa token", skip_all, fields(otel.kind = "client", region = %region), err(level = "debug"))]
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
        let started = std::time::Instant::now();
        let sent = self
            .http
            .post(url)
            .timeout(self.config.request_timeout)
            .form(&form)
            .send()
            .await;
        self.config.observe(AmcOperation::Token, started, &sent);
        let resp = sent.map_err(|e| LwaError::from_reqwest(&e))?;
        let status = resp.status().as_u16();
        let body = resp.text().await.map_err(|e| LwaError::from_reqwest(&e))?;
        if !(200..300).contains(&status) {
            return Err(LwaError::from_response(status, &body));
        }
        // Never echo a success body: it holds tokens.
        let g: Grant = serde_json::from_str(&body).map_err(|e| LwaError::Other {
            status,
            body: format!("unreadable token response ({e})"),
        })?;
        Ok(TokenGrant {
            access_token: g.access_token,
            refresh_token: g.refresh_token.filter(|r| !r.is_empty()),
            expires_in: Duration::from_secs(g.expires_in),
        })
    }
}
