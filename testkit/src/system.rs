//! The whole system for a test: its own database and Redis prefix (or a private Redis),
//! amc-sim in process, and the real `api`, `worker` and `scheduler` binaries.

use crate::{Proc, RedisServer, TestDb, free_port, unique, wait_until};
use amc_sim::{SimConfig, SimHandle};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

pub struct SystemOptions {
    pub workers: usize,
    /// Scheduler replicas (default 1).
    pub schedulers: usize,
    /// Run on a private redis-server (for tests that flush, restart or cut it).
    pub private_redis: bool,
    /// The PostgreSQL server of the test's database (default the machine's, `db::SERVER`).
    pub database_server: Option<String>,
    pub sim: SimConfig,
    /// Extra or overriding `AMP_*` variables for every process.
    pub env: Vec<(&'static str, String)>,
}

impl Default for SystemOptions {
    fn default() -> Self {
        Self {
            workers: 1,
            schedulers: 1,
            private_redis: false,
            database_server: None,
            sim: SimConfig {
                addr: "127.0.0.1:0".parse().expect("addr"),
                run_duration: Duration::from_millis(300),
                ..SimConfig::default()
            },
            env: Vec::new(),
        }
    }
}

pub struct System {
    pub db: TestDb,
    pub sim: SimHandle,
    pub redis: Option<RedisServer>,
    pub redis_url: String,
    pub prefix: String,
    pub api_url: String,
    pub env: HashMap<String, String>,
    pub api: Proc,
    pub workers: Vec<Proc>,
    pub schedulers: Vec<Proc>,
    pub results_dir: PathBuf,
    pub http: reqwest::Client,
}

impl System {
    pub async fn start(opts: SystemOptions) -> anyhow::Result<Self> {
        let db = match &opts.database_server {
            Some(server) => TestDb::on(server).await?,
            None => TestDb::new().await?,
        };
        let sim = amc_sim::spawn(opts.sim).await?;
        let redis = if opts.private_redis {
            Some(RedisServer::start().await?)
        } else {
            None
        };
        let redis_url = redis
            .as_ref()
            .map(|r| r.url())
            .unwrap_or_else(|| "redis://127.0.0.1:6379".into());
        let prefix = unique("ampt");
        let api_port = free_port();
        let results_dir = std::env::temp_dir().join(unique("amp_results"));
        let mut env: HashMap<String, String> = [
            ("AMP_DATABASE_URL", db.url.clone()),
            ("AMP_REDIS_URL", redis_url.clone()),
            ("AMP_REDIS_PREFIX", prefix.clone()),
            ("AMP_API_ADDR", format!("127.0.0.1:{api_port}")),
            ("AMP_AMC_BASE_URL", sim.base_url()),
            ("AMP_LWA_TOKEN_URL", sim.token_url()),
            ("AMP_RESULTS_URL", results_dir.display().to_string()),
            ("AMP_POLL_MIN", "200ms".into()),
            ("AMP_POLL_MAX", "1s".into()),
            ("AMP_RECONCILE_INTERVAL", "500ms".into()),
            ("AMP_CLAIM_IDLE", "2s".into()),
            ("AMP_AMC_TIMEOUT", "3s".into()),
            ("AMP_SHUTDOWN_TIMEOUT", "5s".into()),
            ("AMP_WORKER_CONCURRENCY", "32".into()),
            // Many systems run at once; each process's pool stays small.
            ("AMP_DATABASE_MAX_CONNECTIONS", "8".into()),
            (
                "RUST_LOG",
                std::env::var("AMP_TEST_RUST_LOG").unwrap_or_else(|_| "warn".into()),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        for (k, v) in opts.env {
            env.insert(k.to_string(), v);
        }
        let api = Proc::spawn("api", &[], &env)?;
        let workers = (0..opts.workers)
            .map(|_| Proc::spawn("worker", &[], &env))
            .collect::<Result<Vec<_>, _>>()?;
        let schedulers = (0..opts.schedulers)
            .map(|_| Proc::spawn("scheduler", &[], &env))
            .collect::<Result<Vec<_>, _>>()?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?;
        let api_url = format!("http://127.0.0.1:{api_port}");
        let up = wait_until(Duration::from_secs(20), || {
            let (h, u) = (http.clone(), format!("{api_url}/healthz"));
            async move {
                h.get(u)
                    .send()
                    .await
                    .map(|r| r.status().is_success())
                    .unwrap_or(false)
            }
        })
        .await;
        anyhow::ensure!(up, "the api did not come up");
        Ok(Self {
            db,
            sim,
            redis,
            redis_url,
            prefix,
            api_url,
            env,
            api,
            workers,
            schedulers,
            results_dir,
            http,
        })
    }

    pub fn spawn_worker(&self) -> anyhow::Result<Proc> {
        Proc::spawn("worker", &[], &self.env)
    }

    pub fn spawn_scheduler(&self) -> anyhow::Result<Proc> {
        Proc::spawn("scheduler", &[], &self.env)
    }

    /// Starts `bin` with the system's environment plus `overrides`.
    pub fn spawn_with(&self, bin: &str, overrides: &[(&str, &str)]) -> anyhow::Result<Proc> {
        let mut env = self.env.clone();
        for (k, v) in overrides {
            env.insert((*k).into(), (*v).into());
        }
        Proc::spawn(bin, &[], &env)
    }

    /// Starts a worker with the system's environment plus `overrides` and a health
    /// address of its own; returns it with its `/healthz` URL.
    pub fn spawn_worker_with(&self, overrides: &[(&str, &str)]) -> (Proc, String) {
        let health = format!("127.0.0.1:{}", free_port());
        let mut all = overrides.to_vec();
        all.push(("AMP_WORKER_HEALTH_ADDR", &health));
        let p = self.spawn_with("worker", &all).expect("spawn worker");
        (p, format!("http://{health}/healthz"))
    }

    /// Whether `url` (a health endpoint) answers 2xx.
    pub async fn healthy(&self, url: &str) -> bool {
        self.http
            .get(url)
            .send()
            .await
            .map(|r| r.status().is_success())
            .unwrap_or(false)
    }

    /// Replaces the api process with one started with the current `env` (a rolling
    /// restart after a configuration change) and waits until it is healthy.
    pub async fn restart_api(&mut self) -> anyhow::Result<()> {
        self.api.sigterm_and_wait().await?;
        self.api = Proc::spawn("api", &[], &self.env)?;
        let (http, url) = (self.http.clone(), format!("{}/healthz", self.api_url));
        let up = wait_until(Duration::from_secs(20), || {
            let (h, u) = (http.clone(), url.clone());
            async move {
                h.get(u)
                    .send()
                    .await
                    .map(|r| r.status().is_success())
                    .unwrap_or(false)
            }
        })
        .await;
        anyhow::ensure!(up, "the api did not come back");
        Ok(())
    }

    /// Runs `migrate <args>` with the system's `env` plus `extra`; returns its exit
    /// success, stdout and stderr.
    pub async fn migrate(
        &self,
        args: &[&str],
        extra: &[(&str, &str)],
    ) -> anyhow::Result<(bool, String, String)> {
        let out = tokio::process::Command::new(crate::bin_path("migrate"))
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(&self.env)
            .envs(extra.iter().copied())
            .output()
            .await?;
        Ok((
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ))
    }

    pub fn client(&self) -> Client {
        Client {
            http: self.http.clone(),
            base: format!("{}/api/v1", self.api_url),
            token: None,
        }
    }

    /// amc-sim's admin statistics.
    pub async fn sim_stats(&self) -> anyhow::Result<Value> {
        Ok(self
            .http
            .get(format!("{}/sim/admin/stats", self.sim.base_url()))
            .send()
            .await?
            .json()
            .await?)
    }

    /// POSTs to amc-sim's admin API.
    pub async fn sim_admin(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        let r = self
            .http
            .post(format!("{}/sim/admin/{path}", self.sim.base_url()))
            .json(&body)
            .send()
            .await?;
        anyhow::ensure!(r.status().is_success(), "sim admin {path}: {}", r.status());
        Ok(r.json().await.unwrap_or(Value::Null))
    }

    /// The sim's runs whose SQL contains `needle`.
    pub async fn sim_runs_matching(&self, needle: &str) -> anyhow::Result<Vec<Value>> {
        let stats = self.sim_stats().await?;
        Ok(stats["runs"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r["sql_query"].as_str().is_some_and(|s| s.contains(needle)))
            .collect())
    }

    /// Stops everything and removes the database, the Redis keys and the results.
    pub async fn cleanup(mut self) {
        self.api.sigkill().await;
        for w in &mut self.workers {
            w.sigkill().await;
        }
        for s in &mut self.schedulers {
            s.sigkill().await;
        }
        if let Ok(client) = redis::Client::open(self.redis_url.as_str())
            && let Ok(mut conn) = client.get_multiplexed_async_connection().await
        {
            let _ = queue::remove_prefix_keys(&mut conn, &self.prefix).await;
        }
        let _ = std::fs::remove_dir_all(&self.results_dir);
        let _ = self.sim.shutdown().await;
        self.db.drop_db().await;
    }
}

/// A JSON client of the API (`/api/v1`).
#[derive(Clone)]
pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
    pub token: Option<String>,
}

/// What a test needs after the first-run set-up.
#[derive(Debug, Clone)]
pub struct FirstRun {
    pub account_id: String,
    pub instance_id: String,
    pub workflow_id: String,
}

impl Client {
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.send(reqwest::Method::GET, path, None, &[]).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, Some(body), &[])
            .await
    }

    pub async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::PUT, path, Some(body), &[]).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::PATCH, path, Some(body), &[])
            .await
    }

    pub async fn delete(&self, path: &str) -> (u16, Value) {
        self.send(reqwest::Method::DELETE, path, None, &[]).await
    }

    /// Registers `email` and logs in; the client then sends its token.
    pub async fn register_and_login(&mut self, email: &str) {
        let body = json!({"email": email, "password": "correct horse battery"});
        let (s, b) = self.post("/auth/register", body.clone()).await;
        assert_eq!(s, 201, "register: {b}");
        let (s, b) = self.post("/auth/login", body).await;
        assert_eq!(s, 200, "login: {b}");
        self.token = b["access_token"].as_str().map(str::to_string);
    }

    /// CONTRACT steps 3–6: connection, account, an instance with `cap`, a workflow.
    pub async fn first_run_setup(
        &self,
        amc_instance: &str,
        cap: u32,
        sql: &str,
        params: Value,
    ) -> FirstRun {
        let (s, b) = self
            .put(
                "/amazon/connection",
                json!({"refresh_token": "Atzr|test-refresh-token"}),
            )
            .await;
        assert_eq!(s, 200, "connection: {b}");
        let account_id = self.account().await;
        let instance_id = self.instance(&account_id, amc_instance, cap).await;
        let workflow_id = self.workflow(&instance_id, sql, params).await;
        FirstRun {
            account_id,
            instance_id,
            workflow_id,
        }
    }

    pub async fn account(&self) -> String {
        let (s, b) = self
            .post("/accounts", json!({"name": "Brand", "entity_id": "ENTITY1AA1AA11AAA1", "marketplace_id": "ATVPDKIKX0DER", "region": "NA"}))
            .await;
        assert_eq!(s, 201, "account: {b}");
        b["id"].as_str().expect("account id").to_string()
    }

    pub async fn instance(&self, account_id: &str, amc_instance: &str, cap: u32) -> String {
        let (s, b) = self
            .post(
                "/instances",
                json!({"name": amc_instance, "account_id": account_id, "amc_instance_id": amc_instance, "max_concurrent_executions": cap}),
            )
            .await;
        assert_eq!(s, 201, "instance: {b}");
        b["id"].as_str().expect("instance id").to_string()
    }

    pub async fn workflow(&self, instance_id: &str, sql: &str, params: Value) -> String {
        let (s, b) = self.post("/workflows", json!({"name": "wf", "instance_id": instance_id, "sql_query": sql, "parameters": params})).await;
        assert_eq!(s, 201, "workflow: {b}");
        b["id"].as_str().expect("workflow id").to_string()
    }

    /// Starts a run of `workflow` with `params`; returns its id.
    pub async fn run(&self, workflow: &str, params: Value) -> String {
        let (s, b) = self
            .post(
                &format!("/workflows/{workflow}/executions"),
                json!({"parameters": params, "time_window": {"start": "2026-01-01T00:00:00", "end": "2026-01-08T00:00:00"}}),
            )
            .await;
        assert_eq!(s, 202, "run: {b}");
        b["id"].as_str().expect("execution id").to_string()
    }

    /// Every item of a list endpoint (`{"items","next_cursor"}`), following `next_cursor`
    /// page by page; `path` may carry a query (filters, `limit`).
    pub async fn list_all(&self, path: &str) -> Vec<Value> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let url = match &cursor {
                None => path.to_string(),
                Some(c) => format!("{path}{sep}cursor={c}"),
            };
            let (s, b) = self.get(&url).await;
            assert_eq!(s, 200, "GET {url}: {b}");
            items.extend(b["items"].as_array().expect("items").iter().cloned());
            match b["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => return items,
            }
        }
    }

    /// Waits until `check` holds for what `GET path` answers (or the timeout); returns the
    /// last body.
    pub async fn wait_for(
        &self,
        path: &str,
        timeout: Duration,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let (s, b) = self.get(path).await;
            assert_eq!(s, 200, "GET {path}: {b}");
            if check(&b) || tokio::time::Instant::now() >= deadline {
                return b;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until every run is terminal; returns them.
    pub async fn wait_terminal(&self, ids: &[String], timeout: Duration) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                let (_, b) = self.get(&format!("/executions/{id}")).await;
                out.push(b);
            }
            let done = out.iter().all(|e| {
                matches!(
                    e["status"].as_str(),
                    Some("succeeded" | "failed" | "cancelled")
                )
            });
            if done || tokio::time::Instant::now() >= deadline {
                return out;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}
