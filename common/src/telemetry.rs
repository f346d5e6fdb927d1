//! Tracing setup shared by every process: human-readable logs in development, JSON in
//! production, filtered by `RUST_LOG` (default `info`).

use crate::config::{Config, Env};
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. Safe to call more than once (later calls do nothing).
pub fn init(config: &Config, process: &'static str) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sea_orm=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    let result = match config.env {
        Env::Production => builder.json().with_current_span(true).try_init(),
        Env::Development => builder.compact().try_init(),
    };
    if result.is_ok() {
        if config.otel_endpoint.is_some() {
            tracing::warn!(
                "OTEL_EXPORTER_OTLP_ENDPOINT is set, but trace export is not built yet; logs only"
            );
        }
        tracing::info!(process, "starting");
    }
}
