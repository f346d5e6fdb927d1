//! Shared state of every handler: config, database, queue producer, token cipher, the
//! LWA client and the JWT keys. Held as `Arc<AppState>` by each `#[OpenApi]` struct and
//! attached to the route with `.data(..)` for the security checker.

use crate::auth::JwtKeys;
use common::amc::LwaClient;
use common::config::Config;
use common::crypto::Cipher;
use sea_orm::DatabaseConnection;
use std::sync::Arc;

/// Everything a handler needs.
pub struct AppState {
    pub config: Arc<Config>,
    pub db: DatabaseConnection,
    /// Writes new executions, many requests to one transaction.
    pub creates: common::execution::CreateBatcher,
    pub producer: queue::Producer,
    /// Where execution results are stored (`AMP_RESULTS_URL`).
    pub results: common::results::ResultStore,
    pub cipher: Cipher,
    pub lwa: LwaClient,
    pub jwt: JwtKeys,
    /// The HTTP series, and the registry `/metrics` renders.
    pub metrics: Arc<common::telemetry::metrics::HttpMetrics>,
    pub registry: Arc<prometheus_client::registry::Registry>,
    /// Whether a token's user still exists at its token version.
    pub users: Arc<crate::users::UserGate>,
    /// Password hashes at once.
    pub hashing: crate::limits::Hashing,
    /// Login and registration attempts per IP and email, shared through Redis.
    pub limiter: crate::limits::RateLimiter,
    /// Signs page cursors.
    pub cursors: common::cursor::CursorKey,
    /// A Redis connection for readiness probes (reconnects by itself).
    pub redis: redis::aio::ConnectionManager,
    /// Wakes the live event streams when the feed may have moved; closed at shutdown.
    pub feed: common::event::FeedWatcher,
}
