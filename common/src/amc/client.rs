//! The AMC reporting API client. Every call sends the four AMC headers to
//! `{base}/amc/reporting/{instanceId}/…` on the account's regional host (or on
//! `AMP_AMC_BASE_URL` when set).

use super::error::{AmcError, ErrorClass, classify};
use super::model::{CreateExecution, WorkflowExecution};
use crate::ids::{AmcExecutionId, AmcInstanceId, EntityId, MarketplaceId, Region};
use chrono::NaiveDateTime;
use reqwest::{Method, RequestBuilder, Response};
use std::time::Duration;

/// Where AMC and LWA are, and the app's LWA credentials.
#[derive(Debug, Clone)]
pub struct AmcConfig {
    /// `None`: each account's region picks Amazon's host.
    pub base_url: Option<String>,
    /// `None`: the region's LWA token endpoint.
    pub lwa_token_url: Option<String>,
    pub client_id: String,
    pub client_secret: String,
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
}

impl Default for AmcConfig {
    fn default() -> Self {
        Self {
            base_url: None,
            lwa_token_url: None,
            client_id: String::new(),
            client_secret: String::new(),
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

impl AmcConfig {
    /// The AMC/LWA settings of the process configuration.
    pub fn from_config(config: &crate::config::Config) -> Self {
        Self {
            base_url: config.amc_base_url.clone(),
            lwa_token_url: config.lwa_token_url.clone(),
            client_id: config.lwa_client_id.clone(),
            client_secret: config.lwa_client_secret.expose().to_string(),
            request_timeout: config.amc_timeout,
            ..Self::default()
        }
    }

    pub(crate) fn http(&self) -> Result<reqwest::Client, AmcError> {
        reqwest::Client::builder()
            .timeout(self.request_timeout)
            .connect_timeout(self.connect_timeout)
            .pool_max_idle_per_host(64)
            .build()
            .map_err(|e| AmcError {
                class: ErrorClass::Permanent,
                status: None,
                message: format!("building the HTTP client: {e}"),
            })
    }
}

/// Which instance, as whom.
#[derive(Debug, Clone, Copy)]
pub struct AmcTarget<'a> {
    pub region: Region,
    pub entity_id: &'a EntityId,
    pub marketplace_id: &'a MarketplaceId,
    pub instance_id: &'a AmcInstanceId,
    pub access_token: &'a str,
}

#[derive(Debug, Clone)]
pub struct AmcClient {
    http: reqwest::Client,
    config: AmcConfig,
}

/// A transport failure (timeout, connection) as a transient AMC error.
pub(crate) fn transport(e: reqwest::Error) -> AmcError {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    AmcError::transient(format!("{what}: {e}"))
}

fn retry_after(resp: &Response) -> Option<Duration> {
    let v = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?;
    if let Ok(secs) = v.trim().parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v.trim()).ok()?;
    (at.with_timezone(&chrono::Utc) - chrono::Utc::now())
        .to_std()
        .ok()
}

/// Turns an unsuccessful answer into a classified error.
pub(crate) async fn check(resp: Response) -> Result<Response, AmcError> {
    if resp.status().is_success() {
        return Ok(resp);
    }
    let status = resp.status().as_u16();
    let ra = retry_after(&resp);
    let body = resp.text().await.unwrap_or_default();
    Err(classify(status, &body, ra))
}

async fn json(resp: Response) -> Result<serde_json::Value, AmcError> {
    resp.json()
        .await
        .map_err(|e| AmcError::transient(format!("unreadable AMC answer: {e}")))
}

impl AmcClient {
    pub fn new(config: AmcConfig) -> Result<Self, AmcError> {
        Ok(Self {
            http: config.http()?,
            config,
        })
    }

    fn request(&self, method: Method, t: &AmcTarget<'_>, path: &str) -> RequestBuilder {
        let base = self
            .config
            .base_url
            .as_deref()
            .unwrap_or(t.region.ads_api_base());
        let url = format!(
            "{}/amc/reporting/{}{}",
            base.trim_end_matches('/'),
            t.instance_id.as_str(),
            path
        );
        self.http
            .request(method, url)
            .bearer_auth(t.access_token)
            .header("Amazon-Advertising-API-ClientId", &self.config.client_id)
            .header("Amazon-Advertising-API-AdvertiserId", t.entity_id.as_str())
            .header(
                "Amazon-Advertising-API-MarketplaceId",
                t.marketplace_id.as_str(),
            )
            .header(reqwest::header::CONTENT_TYPE, "application/json")
    }

    async fn send(&self, req: RequestBuilder) -> Result<Response, AmcError> {
        check(req.send().await.map_err(transport)?).await
    }

    /// Creates an ad hoc workflow execution.
    pub async fn create_execution(
        &self,
        t: &AmcTarget<'_>,
        req: &CreateExecution,
    ) -> Result<WorkflowExecution, AmcError> {
        let resp = self
            .send(
                self.request(Method::POST, t, "/workflowExecutions")
                    .json(&req.body()),
            )
            .await?;
        parse(json(resp).await?)
    }

    /// One execution's status.
    pub async fn get_execution(
        &self,
        t: &AmcTarget<'_>,
        id: &AmcExecutionId,
    ) -> Result<WorkflowExecution, AmcError> {
        let resp = self
            .send(self.request(
                Method::GET,
                t,
                &format!("/workflowExecutions/{}", id.as_str()),
            ))
            .await?;
        parse(json(resp).await?)
    }

    /// Every execution created since `min_creation_time` (UTC), following `nextToken`.
    pub async fn list_executions(
        &self,
        t: &AmcTarget<'_>,
        min_creation_time: NaiveDateTime,
        include_workflow: bool,
    ) -> Result<Vec<WorkflowExecution>, AmcError> {
        let min = min_creation_time
            .format(crate::time_window::AMC_FORMAT)
            .to_string();
        let mut out = Vec::new();
        let mut next: Option<String> = None;
        for _ in 0..1_000 {
            let mut q: Vec<(&str, String)> = vec![
                ("minCreationTime", min.clone()),
                ("includeWorkflow", include_workflow.to_string()),
                ("includeCancelled", "true".into()),
                ("limit", "100".into()),
            ];
            if let Some(n) = &next {
                q.push(("nextToken", n.clone()));
            }
            let v = json(
                self.send(
                    self.request(Method::GET, t, "/workflowExecutions")
                        .query(&q),
                )
                .await?,
            )
            .await?;
            for e in v
                .get("executions")
                .and_then(|e| e.as_array())
                .into_iter()
                .flatten()
            {
                out.push(parse(e.clone())?);
            }
            next = v
                .get("nextToken")
                .and_then(|n| n.as_str())
                .filter(|n| !n.is_empty())
                .map(str::to_string);
            if next.is_none() {
                break;
            }
        }
        Ok(out)
    }

    /// Cancels a PENDING or RUNNING execution.
    pub async fn cancel_execution(
        &self,
        t: &AmcTarget<'_>,
        id: &AmcExecutionId,
    ) -> Result<(), AmcError> {
        let req = self
            .request(
                Method::PUT,
                t,
                &format!("/workflowExecutions/{}", id.as_str()),
            )
            .json(&serde_json::json!({"status": "CANCELLED"}));
        self.send(req).await.map(|_| ())
    }

    /// Fresh download URLs of a SUCCEEDED execution (they expire within minutes).
    pub async fn download_urls(
        &self,
        t: &AmcTarget<'_>,
        id: &AmcExecutionId,
    ) -> Result<Vec<String>, AmcError> {
        let path = format!("/workflowExecutions/{}/downloadUrls", id.as_str());
        let v = json(self.send(self.request(Method::GET, t, &path)).await?).await?;
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
    pub async fn download(&self, url: &str) -> Result<Response, AmcError> {
        check(self.http.get(url).send().await.map_err(transport)?).await
    }
}

fn parse(v: serde_json::Value) -> Result<WorkflowExecution, AmcError> {
    WorkflowExecution::from_value(v)
        .map_err(|e| AmcError::transient(format!("unexpected AMC answer: {e}")))
}
