//! Integration tests of amc-sim over HTTP, with the simulator spawned in process.

mod admin_hold;
mod amc_auth;
mod downloads;
mod faults_http;
mod faults_match;
mod faults_run;
mod fidelity;
mod lifecycle;
mod lwa;
mod validation;

use std::time::Duration;

use amc_sim::{SimConfig, SimHandle};
use serde_json::{Value, json};

/// A running simulator plus an HTTP client and an access token.
pub struct TestSim {
    pub sim: SimHandle,
    pub http: reqwest::Client,
    pub token: String,
    pub instance: String,
}

pub const REFRESH: &str = "Atzr|test-refresh";

impl TestSim {
    /// Starts a simulator with `tune` applied to the test config, and fetches a token.
    pub async fn start(tune: impl FnOnce(&mut SimConfig)) -> Self {
        Self::start_with_clock(tune, std::sync::Arc::new(amc_sim::SystemClock)).await
    }

    /// Like [`TestSim::start`], on an injected clock.
    pub async fn start_with_clock(
        tune: impl FnOnce(&mut SimConfig),
        clock: std::sync::Arc<dyn amc_sim::Clock>,
    ) -> Self {
        let mut cfg = SimConfig::for_tests();
        cfg.run_duration = Duration::from_millis(200);
        tune(&mut cfg);
        let sim = amc_sim::spawn_with_clock(cfg, clock)
            .await
            .expect("spawn sim");
        let http = reqwest::Client::new();
        let mut t = Self {
            sim,
            http,
            token: String::new(),
            instance: format!("amc{}", uuid::Uuid::new_v4().simple()),
        };
        t.token = t.exchange(REFRESH).await;
        t
    }

    pub async fn exchange(&self, refresh: &str) -> String {
        let resp = self
            .http
            .post(self.sim.token_url())
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh),
                ("client_id", "dev-client"),
                ("client_secret", "dev-secret"),
            ])
            .send()
            .await
            .expect("token request");
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.expect("token json");
        body["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }

    pub fn url(&self, path: &str) -> String {
        format!(
            "{}/amc/reporting/{}/workflowExecutions{path}",
            self.sim.base_url(),
            self.instance
        )
    }

    /// A request to an AMC path with all four headers.
    pub fn amc(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.at(method, &self.url(path))
    }

    /// A request to `/amc/reporting/{instance}{path}` with all four headers.
    pub fn reporting(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let url = format!(
            "{}/amc/reporting/{}{path}",
            self.sim.base_url(),
            self.instance
        );
        self.at(method, &url)
    }

    /// A request to `url` with all four AMC headers.
    pub fn at(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, url)
            .bearer_auth(&self.token)
            .header("Amazon-Advertising-API-ClientId", "dev-client")
            .header("Amazon-Advertising-API-AdvertiserId", "ENTITY1AA1AA11AAA1")
            .header("Amazon-Advertising-API-MarketplaceId", "ATVPDKIKX0DER")
    }

    /// Sends `req` and returns its status and JSON body (`Null` when the body is not JSON).
    pub async fn send(req: reqwest::RequestBuilder) -> (u16, Value) {
        let resp = req.send().await.expect("send");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Creates an execution from `body`, expecting 200; returns its id.
    pub async fn create_body(&self, body: Value) -> String {
        let (status, v) = Self::send(self.amc(reqwest::Method::POST, "").json(&body)).await;
        assert_eq!(status, 200, "{v}");
        v["workflowExecutionId"].as_str().expect("id").to_owned()
    }

    pub async fn create(&self, sql: &str) -> Value {
        let resp = self
            .amc(reqwest::Method::POST, "")
            .json(&window_body(sql))
            .send()
            .await
            .expect("create");
        assert_eq!(resp.status(), 200);
        resp.json().await.expect("create json")
    }

    pub async fn get(&self, id: &str) -> Value {
        let resp = self
            .amc(reqwest::Method::GET, &format!("/{id}"))
            .send()
            .await
            .expect("get");
        assert_eq!(resp.status(), 200);
        resp.json().await.expect("get json")
    }

    /// Polls until the execution reaches `status`, or panics after `within`.
    pub async fn wait_for(&self, id: &str, status: &str, within: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let v = self.get(id).await;
            if v["status"] == status {
                return v;
            }
            assert!(tokio::time::Instant::now() < deadline, "still {v}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn admin_get(&self, path: &str) -> Value {
        self.http
            .get(format!("{}/sim/admin/{path}", self.sim.base_url()))
            .send()
            .await
            .expect("admin get")
            .json()
            .await
            .expect("admin json")
    }

    pub async fn admin_post(&self, path: &str, body: Value) -> reqwest::Response {
        self.http
            .post(format!("{}/sim/admin/{path}", self.sim.base_url()))
            .json(&body)
            .send()
            .await
            .expect("admin post")
    }
}

/// An EXPLICIT create body for `sql`.
pub fn window_body(sql: &str) -> Value {
    json!({
        "workflow": {"sqlQuery": sql},
        "timeWindowType": "EXPLICIT",
        "timeWindowStart": "2024-01-01T00:00:00",
        "timeWindowEnd": "2024-01-08T00:00:00",
        "timeWindowTimeZone": "America/New_York",
        "outputFormat": "CSV"
    })
}
