//! The RecomAMP Engine HTTP API (poem + poem-openapi): auth, the Amazon connection,
//! accounts, instances, workflows and executions under `/api/v1`, with the spec at
//! `/openapi.json`, Swagger UI at `/docs`, and `/healthz`, `/readyz`, `/metrics`.

pub mod allow;
pub mod auth;
pub mod error;
pub mod input;
pub mod limits;
pub mod listener;
pub mod metrics;
pub mod middleware;
pub mod page;
pub mod params;
pub mod routes;
pub mod state;
pub mod users;

use anyhow::Context;
use common::config::{Config, Env};
use poem::endpoint::BoxEndpoint;
use poem::listener::{Acceptor, Listener, TcpAcceptor, TcpListener};
use poem::{EndpointExt, Response, Route, Server, get};
use poem_openapi::OpenApiService;
use routes::accounts::AccountsApi;
use routes::auth::AuthApi;
use routes::batches::BatchesApi;
use routes::collections::CollectionsApi;
use routes::connection::ConnectionApi;
use routes::events::EventsApi;
use routes::executions::ExecutionsApi;
use routes::instances::InstancesApi;
use routes::runs::RunsApi;
use routes::schedules::SchedulesApi;
use routes::templates::TemplatesApi;
use routes::webhooks::WebhooksApi;
use routes::workflows::WorkflowsApi;
use state::AppState;
use std::future::Future;
use std::sync::Arc;

/// The API's spec service over every resource.
pub type ApiService = OpenApiService<
    params::Grouped<(
        AuthApi,
        ConnectionApi,
        AccountsApi,
        InstancesApi,
        WorkflowsApi,
        ExecutionsApi,
        RunsApi,
        SchedulesApi,
        CollectionsApi,
        BatchesApi,
        EventsApi,
        WebhooksApi,
        TemplatesApi,
    )>,
    (),
>;

/// The OpenAPI service of every `/api/v1` resource.
pub fn api_service(state: &Arc<AppState>) -> ApiService {
    let apis = (
        AuthApi {
            state: state.clone(),
        },
        ConnectionApi {
            state: state.clone(),
        },
        AccountsApi {
            state: state.clone(),
        },
        InstancesApi {
            state: state.clone(),
        },
        WorkflowsApi {
            state: state.clone(),
        },
        ExecutionsApi {
            state: state.clone(),
        },
        RunsApi {
            state: state.clone(),
        },
        SchedulesApi {
            state: state.clone(),
        },
        CollectionsApi {
            state: state.clone(),
        },
        BatchesApi {
            state: state.clone(),
        },
        EventsApi {
            state: state.clone(),
        },
        WebhooksApi {
            state: state.clone(),
        },
        TemplatesApi {
            state: state.clone(),
        },
    );
    OpenApiService::new(
        params::Grouped(apis),
        "RecomAMP Engine",
        env!("CARGO_PKG_VERSION"),
    )
    .description(SPEC_DESCRIPTION)
    .server("/api/v1")
}

/// The spec's `info.description`: what every path answers that no operation can list.
const SPEC_DESCRIPTION: &str = "Runs Amazon Marketing Cloud queries. Every error is an \
RFC 9457 `application/problem+json` body. A request with a method that a path does not serve \
(for example `DELETE /accounts`) is answered `405 Method Not Allowed`, as problem+json, with \
an `Allow` header listing the methods the path serves.";

/// Paths outside the spec, with their methods (for `Allow`).
const OPERATIONAL: &[(&str, &[&str])] = &[
    ("/openapi.json", &["GET"]),
    ("/docs", &["GET"]),
    ("/metrics", &["GET"]),
    ("/healthz", &["GET"]),
    ("/readyz", &["GET"]),
    ("/api/v1/healthz", &["GET"]),
    ("/api/v1/readyz", &["GET"]),
];

/// The whole route tree with its middleware (problem+json errors, body limit, security
/// headers, metrics), ready to serve.
pub fn routes(state: Arc<AppState>) -> BoxEndpoint<'static, Response> {
    let api = api_service(&state);
    let metrics = state.metrics.clone();
    let allow = Arc::new(allow::AllowTable::from_spec(
        &api.spec(),
        "/api/v1",
        OPERATIONAL,
    ));
    let routes = allow.clone();
    Route::new()
        .at("/openapi.json", api.spec_endpoint())
        .nest("/docs", api.swagger_ui())
        .at("/metrics", get(routes::health::metrics))
        .at("/healthz", get(routes::health::healthz))
        .at("/readyz", get(routes::health::readyz))
        .at("/api/v1/healthz", get(routes::health::healthz))
        .at("/api/v1/readyz", get(routes::health::readyz))
        .nest("/api/v1", api)
        .around(middleware::body_limit_layer)
        .around(move |ep, req| error::problem_layer(ep, req, allow.clone()))
        .with(middleware::security_headers(
            state.config.env == Env::Production,
        ))
        .data(state)
        .with(poem::middleware::Tracing)
        .around(move |ep, req| metrics::metrics_layer(ep, req, metrics.clone(), routes.clone()))
        .boxed()
}

/// A built, bound, not yet running API server.
pub struct Application {
    port: u16,
    acceptor: listener::ProblemAcceptor<TcpAcceptor>,
    endpoint: BoxEndpoint<'static, Response>,
    state: Arc<AppState>,
}

/// Connects Postgres and Redis, builds the state and routes, and binds
/// `config.api_addr` (port 0 picks a free port).
pub async fn build(config: Arc<Config>) -> anyhow::Result<Application> {
    let state = Arc::new(build_state(config.clone()).await?);
    let acceptor = TcpListener::bind(config.api_addr)
        .into_acceptor()
        .await
        .with_context(|| format!("binding the API to {}", config.api_addr))?;
    let port = acceptor
        .local_addr()
        .first()
        .and_then(|a| a.as_socket_addr().map(|s| s.port()))
        .context("the API listener has no socket address")?;
    Ok(Application {
        port,
        acceptor: listener::ProblemAcceptor(acceptor),
        endpoint: routes(state.clone()),
        state,
    })
}

/// The shared state: database pool, queue producer, cipher, LWA client, JWT keys.
pub async fn build_state(config: Arc<Config>) -> anyhow::Result<AppState> {
    let db = common::db::connect(&config.database_url, config.pool_size(10))
        .await
        .context("connecting to PostgreSQL")?;
    let producer = queue::Producer::connect(queue::QueueConfig::new(
        config.redis_url.clone(),
        config.redis_prefix.clone(),
    ))
    .await
    .context("connecting the queue producer to Redis")?
    .with_trace(common::telemetry::trace::source());
    let redis_client =
        redis::Client::open(config.redis_url.as_str()).context("parsing the Redis URL")?;
    let redis = redis::aio::ConnectionManager::new(redis_client)
        .await
        .context("connecting to Redis")?;
    let cipher = config.cipher().context("reading AMP_ENCRYPTION_KEY")?;
    let mut registry = prometheus_client::registry::Registry::default();
    let mut amc_config = common::amc::AmcConfig::from_config(&config);
    amc_config.metrics = Some(Arc::new(common::telemetry::metrics::AmcMetrics::register(
        &mut registry,
    )));
    let lwa = common::amc::LwaClient::new(amc_config).context("building the LWA client")?;
    let jwt = auth::JwtKeys::new(config.jwt_secret.expose(), config.access_token_ttl)
        .with_previous(config.jwt_secret_previous.as_ref().map(|s| s.expose()));
    // A bad AMP_RESULTS_URL stops the process here, naming the variable.
    let results = common::results::ResultStore::from_url(&config.results_url)?;
    // Concurrent POST /workflows/{id}/executions share transactions (group commit), and
    // each committed batch's submit jobs go to Redis in one pipeline.
    let creates = common::execution::CreateBatcher::start(
        db.clone(),
        common::execution::CREATE_LIMITS,
        Some(enqueue_submits(producer.clone())),
    );
    let users = users::UserGate::start(db.clone(), &config.database_url);
    let metrics = Arc::new(common::telemetry::metrics::HttpMetrics::register(
        &mut registry,
    ));
    let limiter = limits::RateLimiter::new(redis.clone(), &config.redis_prefix);
    // One watcher per process wakes the live event streams (GET /events/stream).
    let feed = common::event::FeedWatcher::start(db.clone(), common::event::feed::PROBE_EVERY);
    Ok(AppState {
        users,
        hashing: limits::Hashing::new(config.login_concurrency),
        limiter,
        cursors: common::cursor::CursorKey::derive(config.jwt_secret.expose().as_bytes()),
        config,
        creates,
        feed,
        db,
        results,
        producer,
        cipher,
        lwa,
        jwt,
        metrics,
        registry: Arc::new(registry),
        redis,
    })
}

/// Enqueues the submit jobs of newly recorded runs. If the push is lost, the reconciler
/// admits the queued runs anyway.
fn enqueue_submits(producer: queue::Producer) -> common::execution::AfterCommit {
    Arc::new(move |ids| {
        let producer = producer.clone();
        Box::pin(async move {
            let jobs: Vec<_> = ids
                .iter()
                .map(|(id, trace)| (common::jobs::SubmitJob::new(*id, None), trace.clone()))
                .collect();
            if let Err(e) = producer.enqueue_batch_traced(&jobs).await {
                tracing::warn!(runs = ids.len(), error = %e, "could not enqueue; the reconciler will pick the runs up");
            }
        })
    })
}

impl Application {
    /// The port the API listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The shared state (tests use its database and producer).
    pub fn state(&self) -> Arc<AppState> {
        self.state.clone()
    }

    /// Serves until `shutdown` completes, then lets in-flight requests finish within
    /// `config.shutdown_timeout` (live event streams end at once).
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let timeout = self.state.config.shutdown_timeout;
        let feed = self.state.feed.clone();
        let shutdown = async move {
            shutdown.await;
            feed.close();
        };
        tracing::info!(port = self.port, "API listening");
        Server::new_with_acceptor(self.acceptor)
            .run_with_graceful_shutdown(self.endpoint, shutdown, Some(timeout))
            .await
            .context("serving the API")
    }
}
