//! Tracing setup shared by every process: human-readable logs in development, JSON in
//! production, filtered by `RUST_LOG` (default `info`); OpenTelemetry traces over OTLP when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set ([`trace`]); and the Prometheus metrics of each
//! process ([`metrics`]).

pub mod metrics;
pub mod trace;

use crate::config::{Config, Env};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// The process's telemetry; dropping it (at exit) flushes the spans not yet exported.
#[must_use = "keep it alive until the process ends, or spans are lost"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(p) = self.provider.take()
            && let Err(e) = p.shutdown()
        {
            eprintln!("could not flush the last spans: {e}");
        }
    }
}

/// The tracer provider exporting over OTLP, as the `OTEL_*` variables configure it.
fn otlp_provider(process: &'static str) -> anyhow::Result<SdkTracerProvider> {
    // With both OTLP/HTTP encodings compiled in, the library's default is JSON: protobuf
    // (the specification's default, and several times cheaper to encode) unless
    // OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL asks otherwise.
    let mut builder = opentelemetry_otlp::SpanExporter::builder().with_http();
    if std::env::var_os("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL").is_none()
        && std::env::var_os("OTEL_EXPORTER_OTLP_PROTOCOL").is_none()
    {
        builder = builder.with_protocol(opentelemetry_otlp::Protocol::HttpBinary);
    }
    let exporter = builder.build()?;
    let mut resource = opentelemetry_sdk::Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name(format!("recomamp-{process}"));
    }
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build())
}

/// What is exported as spans: `info` and above, none of the libraries' own (poem's
/// request span and its response event go to the logs only: every request already has
/// our `http.request` span, with its route, method and status). A static
/// filter by target and level: unlike an `EnvFilter`, it keeps no per-span state and does
/// nothing when a span is entered or left, which every poll of an instrumented future does.
fn span_targets() -> Targets {
    Targets::new().with_default(LevelFilter::INFO).with_targets(
        ["sqlx", "sea_orm", "hyper", "h2", "reqwest", "poem"].map(|t| (t, LevelFilter::OFF)),
    )
}

/// Installs the global subscriber (logs, and traces when `OTEL_EXPORTER_OTLP_ENDPOINT` is
/// set). Safe to call more than once (later calls do nothing).
pub fn init(config: &Config, process: &'static str) -> Telemetry {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sea_orm=warn"));
    let logs = match config.env {
        Env::Production => tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_target(false)
            .boxed(),
        Env::Development => tracing_subscriber::fmt::layer()
            .compact()
            .with_target(false)
            .boxed(),
    }
    .with_filter(filter);
    let (provider, failed) = match &config.otel_endpoint {
        None => (None, None),
        Some(_) => match otlp_provider(process) {
            Ok(p) => (Some(p), None),
            Err(e) => (None, Some(e)),
        },
    };
    // Spans go to the exporter at `info`, whatever `RUST_LOG` keeps in the logs. Each span
    // carries its name and our own fields only: no source location, thread or target
    // attributes, and no OpenTelemetry context made current on every poll (nothing here
    // reads it: a run's trace travels in `trace`'s task-local and the jobs' payloads).
    // That halves what a span costs to build, queue and encode.
    let otel = provider.as_ref().map(|p| {
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer(process))
            .with_tracked_inactivity(false)
            .with_location(false)
            .with_threads(false)
            .with_target(false)
            .with_context_activation(false)
            .with_filter(span_targets())
    });
    let installed = tracing_subscriber::registry()
        .with(logs)
        .with(otel)
        .try_init()
        .is_ok();
    if installed {
        if let Some(e) = failed {
            tracing::warn!(error = %e, "OTEL_EXPORTER_OTLP_ENDPOINT is set, but the OTLP exporter could not be built; logs only");
        }
        if provider.is_some() {
            trace::enable();
        }
        tracing::info!(process, traces = provider.is_some(), "starting");
    }
    Telemetry { provider }
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
    fn spans_are_ours_at_info_and_above() {
        let t = super::span_targets();
        assert!(t.would_enable("worker::registry", &tracing::Level::INFO));
        assert!(t.would_enable("api::metrics", &tracing::Level::INFO));
        assert!(t.would_enable("common::amc::client", &tracing::Level::WARN));
        assert!(!t.would_enable("worker::registry", &tracing::Level::DEBUG));
        for lib in [
            "sqlx::query",
            "sea_orm::driver",
            "hyper::proto",
            "h2",
            "reqwest::connect",
            "poem::middleware::tracing_mw",
        ] {
            assert!(!t.would_enable(lib, &tracing::Level::ERROR), "{lib}");
        }
    }

    #[test]
    fn chains_name_every_cause() {
        let e = Outer(std::io::Error::other("disk gone"));
        assert_eq!(super::chain(&e), "outer: disk gone");
    }
}
