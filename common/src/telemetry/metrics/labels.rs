//! Label values with a fixed spelling each: how a token refresh ended, which AMC or LWA
//! operation a call was, how it ended.

use super::JobOutcome;
use prometheus_client::encoding::{EncodeLabelValue, LabelValueEncoder};
use std::fmt::Write;

/// How a proactive token refresh ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenOutcome {
    /// A fresh access token was stored.
    Refreshed,
    /// LWA refused the refresh token: the connection needs the user (`reauth_required`).
    ReauthRequired,
    /// LWA or the network failed; tried again next pass (`error`).
    Error,
}

impl TokenOutcome {
    pub const ALL: [Self; 3] = [Self::Refreshed, Self::ReauthRequired, Self::Error];

    /// The `outcome` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Refreshed => "refreshed",
            Self::ReauthRequired => crate::connection::ConnectionStatus::ReauthRequired.as_str(),
            Self::Error => JobOutcome::Error.as_str(),
        }
    }
}

impl EncodeLabelValue for TokenOutcome {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        encoder.write_str(self.as_str())
    }
}

/// An AMC or LWA call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AmcOperation {
    CreateExecution,
    GetExecution,
    ListExecutions,
    DownloadUrls,
    Cancel,
    /// Saved workflows (the queries too big to send ad hoc).
    CreateWorkflow,
    GetWorkflow,
    UpdateWorkflow,
    DeleteWorkflow,
    /// A result file from its presigned URL (the answer's headers; not the body).
    Download,
    /// LWA: a refresh token exchanged for an access token.
    Token,
}

impl AmcOperation {
    /// The `operation` label.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::CreateExecution => "create_execution",
            Self::GetExecution => "get_execution",
            Self::ListExecutions => "list_executions",
            Self::DownloadUrls => "download_urls",
            Self::Cancel => "cancel",
            Self::CreateWorkflow => "create_workflow",
            Self::GetWorkflow => "get_workflow",
            Self::UpdateWorkflow => "update_workflow",
            Self::DeleteWorkflow => "delete_workflow",
            Self::Download => "download",
            Self::Token => "token",
        }
    }
}

/// How a call ended: the answer's HTTP status, or no answer (`timeout`, `error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallStatus {
    Http(u16),
    Timeout,
    Error,
}

impl CallStatus {
    /// The status of a sent request: its answer's, or why there is none.
    pub fn of(sent: &Result<reqwest::Response, reqwest::Error>) -> Self {
        match sent {
            Ok(r) => Self::Http(r.status().as_u16()),
            Err(e) if e.is_timeout() => Self::Timeout,
            Err(_) => Self::Error,
        }
    }
}

impl EncodeLabelValue for AmcOperation {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        encoder.write_str(self.as_str())
    }
}

impl EncodeLabelValue for CallStatus {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        match self {
            Self::Http(code) => encoder.write_str(&code.to_string()),
            Self::Timeout => encoder.write_str("timeout"),
            Self::Error => encoder.write_str("error"),
        }
    }
}
