//! Prometheus metrics, on `prometheus-client`: each process registers the series it
//! records at start-up and serves them at `/metrics` (OpenMetrics text). The series of
//! each process live here, so a reader finds every name and label in one file.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::time::Duration;

/// The content type of [`render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The registry in OpenMetrics text.
pub fn render(registry: &Registry) -> String {
    let mut out = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut out, registry) {
        tracing::error!(error = %e, "could not encode the metrics");
    }
    out
}

/// Durations from 1 ms to about 30 s.
fn latency_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.001, 2.0, 16)
}

fn histogram() -> Histogram {
    Histogram::new(latency_buckets())
}

/// An HTTP request, by its route's template (never the raw path: ids would explode the
/// label set).
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct HttpLabels {
    pub method: &'static str,
    pub route: &'static str,
    pub status: u16,
}

/// An HTTP request's duration, by method and route template.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RouteLabels {
    pub method: &'static str,
    pub route: &'static str,
}

/// The API's series.
#[derive(Debug, Clone)]
pub struct HttpMetrics {
    pub requests: Family<HttpLabels, Counter>,
    pub duration: Family<RouteLabels, Histogram>,
}

impl HttpMetrics {
    /// `http_requests_total{method,route,status}`, `http_request_duration_seconds{method,route}`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self {
            requests: Family::default(),
            duration: Family::new_with_constructor(histogram),
        };
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route template and status",
            m.requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route template",
            m.duration.clone(),
        );
        m
    }

    /// Records one answered request.
    pub fn record(&self, method: &'static str, route: &'static str, status: u16, took: Duration) {
        self.requests
            .get_or_create(&HttpLabels {
                method,
                route,
                status,
            })
            .inc();
        self.duration
            .get_or_create(&RouteLabels { method, route })
            .observe(took.as_secs_f64());
    }
}

crate::text_enum! {
    /// How a job ended.
    pub enum JobOutcome("job outcome") {
        /// The handler finished (its row moved, or had already moved).
        Ok = "ok",
        /// An infrastructure failure: the queue retries the job.
        Error = "error",
    }
}

impl prometheus_client::encoding::EncodeLabelValue for JobOutcome {
    fn encode(
        &self,
        encoder: &mut prometheus_client::encoding::LabelValueEncoder,
    ) -> Result<(), std::fmt::Error> {
        std::fmt::Write::write_str(encoder, self.as_str())
    }
}

/// A job run, by queue and outcome.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct JobLabels {
    pub queue: &'static str,
    pub outcome: JobOutcome,
}

/// A queue.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct QueueLabels {
    pub queue: &'static str,
}

/// A worker's series.
#[derive(Debug, Clone)]
pub struct JobMetrics {
    pub jobs: Family<JobLabels, Counter>,
    pub duration: Family<QueueLabels, Histogram>,
    pub webhook_attempts: Family<WebhookLabels, Counter>,
    pub webhook_latency: Family<EndpointLabels, Histogram>,
    pub webhook_disabled: Counter,
}

/// A webhook attempt's endpoint and what became of its delivery (`delivered`, `pending`:
/// retried, `failed`, `skipped`, `lost_lease`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct WebhookLabels {
    pub endpoint_id: String,
    pub outcome: &'static str,
}

/// A webhook endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct EndpointLabels {
    pub endpoint_id: String,
}

impl JobMetrics {
    /// `jobs_total{queue,outcome}`, `job_duration_seconds{queue}`,
    /// `webhook_attempts_total{endpoint_id,outcome}`,
    /// `webhook_attempt_duration_seconds{endpoint_id}`, `webhook_endpoints_disabled_total`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self {
            jobs: Family::default(),
            duration: Family::new_with_constructor(histogram),
            webhook_attempts: Family::default(),
            webhook_latency: Family::new_with_constructor(histogram),
            webhook_disabled: Counter::default(),
        };
        registry.register("jobs", "Jobs run, by queue and outcome", m.jobs.clone());
        registry.register(
            "job_duration_seconds",
            "Time a job's handler took, by queue",
            m.duration.clone(),
        );
        registry.register(
            "webhook_attempts",
            "Webhook attempts, by endpoint and what became of the delivery",
            m.webhook_attempts.clone(),
        );
        registry.register(
            "webhook_attempt_duration_seconds",
            "Time a webhook attempt took (request to answer), by endpoint",
            m.webhook_latency.clone(),
        );
        registry.register(
            "webhook_endpoints_disabled",
            "Webhook endpoints this process disabled by the rule",
            m.webhook_disabled.clone(),
        );
        m
    }

    /// Records one webhook attempt.
    pub fn webhook_attempt(&self, endpoint_id: &str, outcome: &'static str, took_ms: u32) {
        self.webhook_attempts
            .get_or_create(&WebhookLabels {
                endpoint_id: endpoint_id.to_owned(),
                outcome,
            })
            .inc();
        self.webhook_latency
            .get_or_create(&EndpointLabels {
                endpoint_id: endpoint_id.to_owned(),
            })
            .observe(f64::from(took_ms) / 1000.0);
    }

    /// Records one job run.
    pub fn record(&self, queue: &'static str, outcome: JobOutcome, took: Duration) {
        self.jobs.get_or_create(&JobLabels { queue, outcome }).inc();
        self.duration
            .get_or_create(&QueueLabels { queue })
            .observe(took.as_secs_f64());
    }
}

/// What a reconcile pass re-enqueued.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ReconcileLabels {
    pub kind: &'static str,
}

/// Ticks recorded missed, by schedule.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ScheduleLabels {
    pub schedule_id: String,
}

/// How a tick ended up (`started`, `skipped_overlap`, `buffered`, `invalid`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct FireLabels {
    pub outcome: &'static str,
}

/// The scheduler's series.
#[derive(Debug, Clone)]
pub struct SchedulerMetrics {
    pub passes: Counter,
    pub reconciled: Family<ReconcileLabels, Counter>,
    /// Seconds from a tick's instant to its run being recorded (on-time fires only).
    pub fire_lag: Histogram,
    pub fires: Family<FireLabels, Counter>,
    pub missed: Family<ScheduleLabels, Counter>,
    pub due: Gauge,
    pub pruned: Family<ReconcileLabels, Counter>,
}

impl SchedulerMetrics {
    /// `reconcile_passes_total`, `reconciled_total{kind}` (`step`, `admission`, `cancel`),
    /// `schedule_fire_lag_seconds`, `schedule_fires_total{outcome}`,
    /// `schedule_missed_fires_total{schedule_id}`, `schedules_due`, `pruned_total{kind}`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self {
            passes: Counter::default(),
            reconciled: Family::default(),
            fire_lag: Histogram::new(exponential_buckets(0.001, 2.0, 18)),
            fires: Family::default(),
            missed: Family::default(),
            due: Gauge::default(),
            pruned: Family::default(),
        };
        registry.register("reconcile_passes", "Reconcile passes run", m.passes.clone());
        registry.register(
            "reconciled",
            "Jobs the reconciler re-enqueued, by kind (step, admission, cancel)",
            m.reconciled.clone(),
        );
        registry.register_with_unit(
            "schedule_fire_lag",
            "Seconds from a tick's instant to its run being recorded (ticks fired as they came due)",
            prometheus_client::registry::Unit::Seconds,
            m.fire_lag.clone(),
        );
        registry.register(
            "schedule_fires",
            "Ticks and how they ended up (started, skipped_overlap, buffered, invalid)",
            m.fires.clone(),
        );
        registry.register(
            "schedule_missed_fires",
            "Ticks recorded missed (they came due while no scheduler ran), by schedule",
            m.missed.clone(),
        );
        registry.register(
            "schedules_due",
            "Schedules due at the last look",
            m.due.clone(),
        );
        registry.register(
            "pruned",
            "Rows removed by the pruning duty, by kind (events, schedulers)",
            m.pruned.clone(),
        );
        m
    }
}

/// A registry being filled at start-up, then shared read-only.
pub type Shared = Arc<Registry>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_render_with_their_labels() {
        let mut r = Registry::default();
        let http = HttpMetrics::register(&mut r);
        let jobs = JobMetrics::register(&mut r);
        http.record(
            "GET",
            "/api/v1/executions/{id}",
            200,
            Duration::from_millis(3),
        );
        jobs.record("execution.poll", JobOutcome::Ok, Duration::from_millis(1));
        let text = render(&r);
        assert!(
            text.contains(r#"http_requests_total{method="GET",route="/api/v1/executions/{id}",status="200"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"jobs_total{queue="execution.poll",outcome="ok"} 1"#),
            "{text}"
        );
        assert!(text.contains("job_duration_seconds_bucket"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
