//! The AMC reporting API client. Every call sends the four AMC headers to
//! `{base}/amc/reporting/{instanceId}/…` on the account's regional host (or on
//! `AMP_AMC_BASE_URL` when set).

use super::error::{AmcError, ErrorClass};
use super::lwa::LwaClient;
use super::model::{AMC_TIME_FORMAT, CreateExecution, WorkflowExecution};
use super::{AmcConfig, http_client};
use crate::ids::{AmcExecutionId, AmcInstanceId, EntityId, MarketplaceId, Region};
use crate::telemetry::metrics::AmcOperation;
use chrono::NaiveDateTime;
use reqwest::{Method, RequestBuilder, Response};

/// A guard against a `nextToken` that never ends.
const MAX_PAGES: usize = 1_000;

/// Which instance, as whom. `Debug` hides the token.
#[derive(Clone, Copy)]
pub struct AmcTarget<'a> {
    pub region: Region,
    pub entity_id: &'a EntityId,
    pub marketplace_id: &'a MarketplaceId,
    pub instance_id: &'a AmcInstanceId,
    pub access_token: &'a str,
}

impl std::fmt::Debug for AmcTarget<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmcTarget")
            .field("region", &self.region)
            .field("entity_id", self.entity_id)
            .field("marketplace_id", self.marketplace_id)
            .field("instance_id", self.instance_id)
            .finish_non_exhaustive()
    }
}

/// The AMC reporting client (one pooled HTTP client; Clone is cheap).
#[derive(Debug, Clone)]
pub struct AmcClient {
    http: reqwest::Client,
    config: AmcConfig,
    lwa: LwaClient,
}

fn transport(e: reqwest::Error) -> AmcError {
    AmcError::from_reqwest(&e)
}

/// Turns an unsuccessful answer into a classified error.
async fn check(resp: Response) -> Result<Response, AmcError> {
    if resp.status().is_success() {
        return Ok(resp);
    }
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = resp.text().await.map_err(transport)?;
    Err(AmcError::from_response(
        status,
        retry_after.as_deref(),
        &body,
    ))
}

pub(super) async fn json(resp: Response) -> Result<serde_json::Value, AmcError> {
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.map_err(transport)?;
    // A cut or garbled answer is transient: for a create it means the run may exist at
    // AMC, and the retry reconciles before submitting again.
    serde_json::from_slice(&bytes).map_err(|e| {
        AmcError::new(
            ErrorClass::Transient,
            Some(status),
            format!("unreadable AMC answer: {e}"),
        )
    })
}

impl AmcClient {
    pub fn new(config: AmcConfig) -> Result<Self, AmcError> {
        if let Some(base) = &config.base_url {
            url::Url::parse(base).map_err(|e| {
                AmcError::permanent(None, format!("invalid AMC base URL `{base}`: {e}"))
            })?;
        }
        let http = http_client(&config)?;
        let lwa = LwaClient::with_http(http.clone(), config.clone());
        Ok(Self { http, config, lwa })
    }

    /// The LWA client sharing this client's connection pool and credentials.
    pub fn lwa(&self) -> &LwaClient {
        &self.lwa
    }

    /// `{base}/amc/reporting/{instance}/{segments…}`, each segment percent-encoded.
    fn url(&self, t: &AmcTarget<'_>, segments: &[&str]) -> Result<url::Url, AmcError> {
        let base = self
            .config
            .base_url
            .as_deref()
            .unwrap_or(t.region.ads_api_base());
        let mut url = url::Url::parse(base).map_err(|e| {
            AmcError::permanent(None, format!("invalid AMC base URL `{base}`: {e}"))
        })?;
        url.path_segments_mut()
            .map_err(|()| {
                AmcError::permanent(None, format!("AMC base URL `{base}` cannot have a path"))
            })?
            .pop_if_empty()
            .extend(["amc", "reporting", t.instance_id.as_str()])
            .extend(segments);
        Ok(url)
    }

    pub(super) fn request(
        &self,
        method: Method,
        t: &AmcTarget<'_>,
        segments: &[&str],
    ) -> Result<RequestBuilder, AmcError> {
        self.request_query(method, t, segments, &[])
    }

    fn request_query(
        &self,
        method: Method,
        t: &AmcTarget<'_>,
        segments: &[&str],
        query: &[(&str, &str)],
    ) -> Result<RequestBuilder, AmcError> {
        let mut url = self.url(t, segments)?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        Ok(self
            .http
            .request(method, url)
            .timeout(self.config.request_timeout)
            .bearer_auth(t.access_token)
            .header("Amazon-Advertising-API-ClientId", &self.config.client_id)
            .header("Amazon-Advertising-API-AdvertiserId", t.entity_id.as_str())
            .header(
                "Amazon-Advertising-API-MarketplaceId",
                t.marketplace_id.as_str(),
            )
            .header(reqwest::header::CONTENT_TYPE, "application/json"))
    }

    pub(super) async fn send(
        &self,
        op: AmcOperation,
        req: RequestBuilder,
    ) -> Result<Response, AmcError> {
        let started = std::time::Instant::now();
        let sent = req.send().await;
        self.config.observe(op, started, &sent);
        check(sent.map_err(transport)?).await
    }

    /// Creates a workflow execution (ad hoc, or of a saved workflow).
    #[tracing::instrument(name = "amc create_execution", skip_all, fields(otel.kind = "client"), err(level = "debug"))]
    pub async fn create_execution(
        &self,
        t: &AmcTarget<'_>,
        req: &CreateExecution,
    ) -> Result<WorkflowExecution, AmcError> {
        let resp = self
            .send(
                AmcOperation::CreateExecution,
                self.request(Method::POST, t, &["workflowExecutions"])?
                    .json(&req.to_body()),
            )
            .await?;
        parse(json(resp).await?)
    }

    /// One execution's status.
    #[tracing::instrument(name = "amc get_execution", skip_all, fields(otel.kind = "client"), err(level = "debug"))]
    pub async fn get_execution(
        &self,
        t: &AmcTarget<'_>,
        id: &AmcExecutionId,
    ) -> Result<WorkflowExecution, AmcError> {
        let resp = self
            .send(
                AmcOperation::GetExecution,
                self.request(Method::GET, t, &["workflowExecutions", id.as_str()])?,
            )
            .await?;
        parse(json(resp).await?)
    }

    /// Every execution created since `min_creation_time` (UTC), following `nextToken`.
    #[tracing::instrument(name = "amc list_executions", skip_all, fields(otel.kind = "client"), err(level = "debug"))]
    pub async fn list_executions(
        &self,
        t: &AmcTarget<'_>,
        min_creation_time: NaiveDateTime,
        include_workflow: bool,
    ) -> Result<Vec<WorkflowExecution>, AmcError> {
        let min = min_creation_time.format(AMC_TIME_FORMAT).to_string();
        let mut out = Vec::new();
        let mut next: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let include = if include_workflow { "true" } else { "false" };
            let mut q = vec![
                ("minCreationTime", min.as_str()),
                ("includeWorkflow", include),
                // A run cancelled while its submission was in doubt must still be found.
                ("includeCancelled", "true"),
                ("limit", "100"),
            ];
            if let Some(n) = &next {
                q.push(("nextToken", n.as_str()));
            }
            let req = self.request_query(Method::GET, t, &["workflowExecutions"], &q)?;
            let v = json(self.send(AmcOperation::ListExecutions, req).await?).await?;
            for e in v
                .get("executions")
                .and_then(|e| e.as_array())
                .into_iter()
                .flatten()
            {
                out.push(parse(e.clone())?);
            }
            next = next_token(&v);
            if next.is_none() {
                return Ok(out);
            }
        }
        Err(AmcError::permanent(
            None,
            format!("listing executions did not end after {MAX_PAGES} pages"),
        ))
    }

    /// Cancels a PENDING or RUNNING execution.
    #[tracing::instrument(name = "amc cancel_execution", skip_all, fields(otel.kind = "client"), err(level = "debug"))]
    pub async fn cancel_execution(
        &self,
        t: &AmcTarget<'_>,
        id: &AmcExecutionId,
    ) -> Result<(), AmcError> {
        let req = self
            .request(Method::PUT, t, &["workflowExecutions", id.as_str()])?
            .json(&serde_json::json!({"status": "CANCELLED"}));
        self.send(AmcOperation::Cancel, req).await.map(|_| ())
    }

    /// Fresh download URLs of a SUCCEEDED execution (they expire within minutes).
    #[tracing::instrument(name = "amc download_urls", skip_all, fields(otel.kind = "client"), err(level = "debug"))]
    pub async fn download_urls(
        &self,
        t: &AmcTarget<'_>,
        id: &AmcExecutionId,
    ) -> Result<Vec<String>, AmcError> {
        let segments = ["workflowExecutions", id.as_str(), "downloadUrls"];
        let req = self.request(Method::GET, t, &segments)?;
        let v = json(self.send(AmcOperation::DownloadUrls, req).await?).await?;
        Ok(v.get("downloadUrls")
            .and_then(|u| u.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|u| u.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Starts downloading one presigned URL (no AMC headers); stream the response body.
    #[tracing::instrument(name = "amc download", skip_all, fields(otel.kind = "client"), err(level = "debug"))]
    pub async fn download(&self, url: &str) -> Result<Response, AmcError> {
        let started = std::time::Instant::now();
        let sent = self.http.get(url).send().await;
        self.config.observe(AmcOperation::Download, started, &sent);
        let resp = sent.map_err(transport)?;
        match check(resp).await {
            Err(e) if e.status == Some(403) => {
                Err(AmcError::new(ErrorClass::UrlExpired, e.status, e.message))
            }
            other => other,
        }
    }
}

/// The token of a list's next page: none when `nextToken` is absent (AMC's last page),
/// `null` (the spec's model) or empty (the AWS solution's workflow manager pages while
/// `response.get('nextToken', '') != ''`); sources in `amc-sim/README.md`, "The last
/// page of a list has no `nextToken`".
fn next_token(page: &serde_json::Value) -> Option<String> {
    page.get("nextToken")
        .and_then(serde_json::Value::as_str)
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
}

fn parse(v: serde_json::Value) -> Result<WorkflowExecution, AmcError> {
    WorkflowExecution::from_value(v)
        .map_err(|e| AmcError::permanent(None, format!("unexpected AMC execution: {e}")))
}

#[cfg(test)]
mod tests {
    use super::next_token;
    use serde_json::json;

    /// AMC leaves `nextToken` out on the last page (the AWS solution's test fixture
    /// `{"status":"open","executions":[…]}`); the spec's model allows `null`; the AWS
    /// solution's workflow manager also ends on `""`. All three end the listing.
    #[test]
    fn absent_null_or_empty_next_token_is_the_last_page() {
        for last in [
            json!({"executions": []}),
            json!({"executions": [], "nextToken": null}),
            json!({"executions": [], "nextToken": ""}),
        ] {
            assert_eq!(next_token(&last), None, "{last}");
        }
        assert_eq!(
            next_token(&json!({"executions": [], "nextToken": "abc"})),
            Some("abc".to_owned())
        );
    }
}
