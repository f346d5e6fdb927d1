//! Client for Amazon Marketing Cloud's reporting API (workflow executions, and the saved
//! workflows big queries run through) and for Login with Amazon's token refresh, with every failure classified where it arises.
//!
//! [`AmcClient`] calls AMC for one [`AmcTarget`] (region, advertiser, marketplace,
//! instance and a current access token). It never refreshes tokens itself: on an
//! [`ErrorClass::Auth`] error the caller refreshes through [`LwaClient::refresh`] (also
//! reachable as [`AmcClient::lwa`]) and retries once.

mod client;
mod error;
mod lwa;
mod model;
mod workflows;

pub use client::{AmcClient, AmcTarget};
pub use error::{AmcError, ErrorClass, LwaError, parse_retry_after};
pub use lwa::{LwaClient, TokenGrant};
pub use model::{AmcStatus, CreateExecution, ExecutionQuery, WorkflowExecution};

use crate::telemetry::metrics::{AmcMetrics, AmcOperation, CallStatus};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Hosts, LWA credentials and timeouts of the AMC and LWA clients.
#[derive(Clone)]
pub struct AmcConfig {
    /// The Ads API base for every region (amc-sim in tests); `None`: the region's host.
    pub base_url: Option<String>,
    /// The LWA token endpoint for every region; `None`: the region's endpoint.
    pub lwa_token_url: Option<String>,
    pub client_id: String,
    pub client_secret: String,
    /// Whole-request limit of each API call (not of a result download, which only has a
    /// per-read limit of the same length). Default 30 s.
    pub request_timeout: Duration,
    /// Default 10 s.
    pub connect_timeout: Duration,
    /// Where every call's operation, status and latency is recorded (none: nowhere).
    pub metrics: Option<Arc<AmcMetrics>>,
}

impl AmcConfig {
    /// A config on Amazon's regional hosts with default timeouts.
    pub fn new(client_id: impl Into<String>, client_secret: impl Into<String>) -> Self {
        Self {
            base_url: None,
            lwa_token_url: None,
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            metrics: None,
        }
    }

    /// Records one sent request (its answer's status, or why there is none).
    pub(crate) fn observe(
        &self,
        operation: AmcOperation,
        started: Instant,
        sent: &Result<reqwest::Response, reqwest::Error>,
    ) {
        if let Some(m) = &self.metrics {
            m.record(operation, CallStatus::of(sent), started.elapsed());
        }
    }

    /// The AMC / LWA part of the process configuration.
    pub fn from_config(cfg: &crate::config::Config) -> Self {
        Self {
            base_url: cfg.amc_base_url.clone(),
            lwa_token_url: cfg.lwa_token_url.clone(),
            request_timeout: cfg.amc_timeout,
            ..Self::new(cfg.lwa_client_id.clone(), cfg.lwa_client_secret.expose())
        }
    }
}

impl fmt::Debug for AmcConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AmcConfig")
            .field("base_url", &self.base_url)
            .field("lwa_token_url", &self.lwa_token_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("request_timeout", &self.request_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("metrics", &self.metrics.is_some())
            .finish()
    }
}

/// Builds the shared, pooled HTTP client.
fn http_client(cfg: &AmcConfig) -> Result<reqwest::Client, AmcError> {
    reqwest::Client::builder()
        .connect_timeout(cfg.connect_timeout)
        .read_timeout(cfg.request_timeout)
        .user_agent(concat!("recomamp-engine/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| AmcError::permanent(None, format!("building the HTTP client: {e}")))
}
