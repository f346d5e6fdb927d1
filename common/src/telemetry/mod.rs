//! Tracing setup shared by every process: human-readable logs in development, JSON in
//! production, filtered by `RUST_LOG` (default `info`), and the Prometheus metrics of each
//! process ([`metrics`]).

pub mod metrics;

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

/// An error with its whole cause chain, `outer: inner: innermost`, for the one log line
/// where it is handled.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn chains_name_every_cause() {
        let e = Outer(std::io::Error::other("disk gone"));
        assert_eq!(super::chain(&e), "outer: disk gone");
    }
}
