//! `spawn_app()`: a fresh database (migrated), a unique Redis prefix, amc-sim in process
//! and the API on port 0; everything is removed when the [`TestApp`] is dropped.

#![allow(dead_code)]

use api::state::AppState;
use reqwest::StatusCode;
use sea_orm::DatabaseConnection;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;

pub const PASSWORD: &str = "correct horse battery";

/// A running API with its own database, Redis prefix and simulator.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`
    pub address: String,
    pub port: u16,
    pub client: reqwest::Client,
    /// A connection of the test itself (for assertions on rows).
    pub db: DatabaseConnection,
    pub database_url: String,
    pub redis_prefix: String,
    pub sim: amc_sim::SimHandle,
    pub state: Arc<AppState>,
    /// The config variables the app was built from (reuse them for a worker).
    pub vars: HashMap<String, String>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

/// A logged-in user.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub id: Uuid,
    pub email: String,
    pub access_token: String,
    pub refresh_token: String,
}

/// A response with its status, content type and body (JSON when it parses).
#[derive(Debug)]
pub struct TestResponse {
    pub status: StatusCode,
    pub content_type: String,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    pub json: Value,
}

impl TestResponse {
    /// Asserts an RFC 9457 problem with this status; returns its body.
    pub fn assert_problem(&self, status: u16) -> &Value {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.text);
        assert!(
            self.content_type.starts_with("application/problem+json"),
            "content-type {} for {}",
            self.content_type,
            self.text
        );
        assert_eq!(self.json["status"], status, "{}", self.text);
        assert!(
            self.json["title"].is_string() && self.json["detail"].is_string(),
            "{}",
            self.text
        );
        &self.json
    }
}

/// Starts everything with the default test configuration.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts everything; `customize` may change the config variables before the build.
pub async fn spawn_app_with(customize: impl FnOnce(&mut HashMap<String, String>)) -> TestApp {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let suffix = Uuid::new_v4().simple().to_string();
    let database_url = format!("postgres://postgres@127.0.0.1:5432/amp_api_test_{suffix}");
    let redis_prefix = format!("amp_api_test_{suffix}");
    migrations::migrate_up(&database_url)
        .await
        .expect("migrate the test database");
    let sim = amc_sim::spawn(amc_sim::SimConfig {
        addr: "127.0.0.1:0".parse().expect("addr"),
        ..Default::default()
    })
    .await
    .expect("start amc-sim");

    let mut vars: HashMap<String, String> = [
        ("AMP_DATABASE_URL", database_url.clone()),
        ("AMP_REDIS_URL", "redis://127.0.0.1:6379".to_string()),
        ("AMP_REDIS_PREFIX", redis_prefix.clone()),
        ("AMP_API_ADDR", "127.0.0.1:0".to_string()),
        ("AMP_AMC_BASE_URL", sim.base_url()),
        ("AMP_LWA_TOKEN_URL", sim.token_url()),
        ("AMP_SHUTDOWN_TIMEOUT", "2s".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    customize(&mut vars);
    let config = Arc::new(common::config::Config::from_map(&vars).expect("test config"));
    let app = api::build(config).await.expect("build the API");
    let port = app.port();
    let state = app.state();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let _ = app
            .run_until_stopped(async {
                let _ = rx.await;
            })
            .await;
    });
    let db = common::db::connect(&database_url, 2)
        .await
        .expect("test db connection");
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        client: reqwest::Client::new(),
        db,
        database_url,
        redis_prefix,
        sim,
        state,
        vars,
        shutdown: Some(tx),
        server: Some(server),
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.abort();
        }
        let url = self.database_url.clone();
        let producer = self.state.producer.clone();
        // Drop runs inside the test's runtime: clean up from a thread with its own.
        let cleanup = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let limit = std::time::Duration::from_secs(3);
                let _ = tokio::time::timeout(limit, producer.remove_prefix_keys()).await;
                if let Err(e) = migrations::drop_database(&url).await {
                    eprintln!("could not drop {url}: {e:#}");
                }
            });
        });
        let _ = cleanup.join();
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// Any request; `token` adds `Authorization: Bearer`.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> TestResponse {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.client.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        read(req.send().await.expect("send")).await
    }

    pub async fn get(&self, path: &str, token: &str) -> TestResponse {
        self.request("GET", path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> TestResponse {
        self.request("POST", path, Some(token), Some(body)).await
    }

    /// Registers `email` with [`PASSWORD`].
    pub async fn register(&self, email: &str) -> TestResponse {
        self.request(
            "POST",
            "/api/v1/auth/register",
            None,
            Some(json!({"email": email, "password": PASSWORD})),
        )
        .await
    }

    pub async fn login(&self, email: &str, password: &str) -> TestResponse {
        self.request(
            "POST",
            "/api/v1/auth/login",
            None,
            Some(json!({"email": email, "password": password})),
        )
        .await
    }

    /// A new registered, logged-in user with a random email.
    pub async fn new_user(&self) -> TestUser {
        let email = format!("user-{}@example.com", Uuid::new_v4().simple());
        let reg = self.register(&email).await;
        assert_eq!(reg.status, StatusCode::CREATED, "{}", reg.text);
        let login = self.login(&email, PASSWORD).await;
        assert_eq!(login.status, StatusCode::OK, "{}", login.text);
        TestUser {
            id: reg.json["id"].as_str().expect("id").parse().expect("uuid"),
            email,
            access_token: login.json["access_token"]
                .as_str()
                .expect("access")
                .to_string(),
            refresh_token: login.json["refresh_token"]
                .as_str()
                .expect("refresh")
                .to_string(),
        }
    }

    /// Connects Amazon for `user` with a token the simulator accepts.
    pub async fn connect_amazon(&self, user: &TestUser) -> TestResponse {
        let r = self
            .request(
                "PUT",
                "/api/v1/amazon/connection",
                Some(&user.access_token),
                Some(json!({"refresh_token": "Atzr|test-refresh-token"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        r
    }

    /// Creates an account, an instance and a workflow (`sql_query` with its defaults) for
    /// `user`; returns (account id, instance id, workflow id).
    pub async fn create_workflow(
        &self,
        user: &TestUser,
        sql_query: &str,
        parameters: Value,
    ) -> (Uuid, Uuid, Uuid) {
        let t = &user.access_token;
        let acc = self
            .post(
                "/api/v1/accounts",
                t,
                json!({"name": "Brand", "entity_id": format!("ENTITY{}", Uuid::new_v4().simple()), "marketplace_id": "ATVPDKIKX0DER", "region": "NA"}),
            )
            .await;
        assert_eq!(acc.status, StatusCode::CREATED, "{}", acc.text);
        let account_id = id_of(&acc);
        let inst = self
            .post(
                "/api/v1/instances",
                t,
                json!({"name": "Main", "account_id": account_id, "amc_instance_id": "amcinstance1", "max_concurrent_executions": 10}),
            )
            .await;
        assert_eq!(inst.status, StatusCode::CREATED, "{}", inst.text);
        let instance_id = id_of(&inst);
        let wf = self
            .post(
                "/api/v1/workflows",
                t,
                json!({"name": "Report", "instance_id": instance_id, "sql_query": sql_query, "parameters": parameters}),
            )
            .await;
        assert_eq!(wf.status, StatusCode::CREATED, "{}", wf.text);
        (account_id, instance_id, id_of(&wf))
    }
}

/// The `id` of a created resource.
pub fn id_of(r: &TestResponse) -> Uuid {
    r.json["id"].as_str().expect("id").parse().expect("uuid")
}

/// Reads a response fully.
pub async fn read(resp: reqwest::Response) -> TestResponse {
    let status = resp.status();
    let headers = resp.headers().clone();
    let content_type = headers
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let text = resp.text().await.expect("body");
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    TestResponse {
        status,
        content_type,
        headers,
        text,
        json,
    }
}

/// Polls `f` every 50 ms until it is true or `timeout` passes.
pub async fn wait_until<F, Fut>(timeout: std::time::Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if f().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
