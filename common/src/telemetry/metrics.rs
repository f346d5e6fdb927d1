//! Prometheus metrics, on `prometheus-client`: each process registers the series it
//! records at start-up and serves them at `/metrics` (OpenMetrics text). The series of
//! each process live here, so a reader finds every name and label in one file (the label
//! values of fixed spelling in `labels`; the SQL and Redis reads behind the scheduler's
//! gauges of shared state in [`gauges`]).

use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

pub mod gauges;
mod labels;

pub use labels::{AmcOperation, CallStatus, TokenOutcome};

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

/// A metric whose HELP and TYPE are rendered even before its first series (a family with
/// no label set yet), so `/metrics` lists every series a process has from its start.
#[derive(Debug)]
struct Listed<M>(M);

impl<M: EncodeMetric> EncodeMetric for Listed<M> {
    fn encode(&self, encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        self.0.encode(encoder)
    }

    fn metric_type(&self) -> MetricType {
        self.0.metric_type()
    }
}

/// Durations from 1 ms to about 30 s.
fn latency_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.001, 2.0, 16)
}

fn histogram() -> Histogram {
    Histogram::new(latency_buckets())
}

/// Waits from 1 ms to about 9 minutes (a backlog's queue-to-start latency).
fn wait_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.001, 2.0, 20)
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
            Listed(m.requests.clone()),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route template",
            Listed(m.duration.clone()),
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
    /// From a job becoming runnable to its handler starting.
    pub queue_latency: Family<QueueLabels, Histogram>,
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
    /// `job_queue_latency_seconds{queue}`, `webhook_attempts_total{endpoint_id,outcome}`,
    /// `webhook_attempt_duration_seconds{endpoint_id}`, `webhook_endpoints_disabled_total`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self {
            jobs: Family::default(),
            duration: Family::new_with_constructor(histogram),
            queue_latency: Family::new_with_constructor(|| Histogram::new(wait_buckets())),
            webhook_attempts: Family::default(),
            webhook_latency: Family::new_with_constructor(histogram),
            webhook_disabled: Counter::default(),
        };
        registry.register(
            "jobs",
            "Jobs run, by queue and outcome",
            Listed(m.jobs.clone()),
        );
        registry.register(
            "job_duration_seconds",
            "Time a job's handler took, by queue",
            Listed(m.duration.clone()),
        );
        registry.register(
            "job_queue_latency_seconds",
            "Time from a job becoming runnable (pushed, promoted from the delayed set or handed back) to its handler starting, by queue",
            Listed(m.queue_latency.clone()),
        );
        for queue in crate::jobs::ALL_QUEUES {
            let _ = m.queue_latency.get_or_create(&QueueLabels { queue });
        }
        registry.register(
            "webhook_attempts",
            "Webhook attempts, by endpoint and what became of the delivery",
            Listed(m.webhook_attempts.clone()),
        );
        registry.register(
            "webhook_attempt_duration_seconds",
            "Time a webhook attempt took (request to answer), by endpoint",
            Listed(m.webhook_latency.clone()),
        );
        registry.register(
            "webhook_endpoints_disabled",
            "Webhook endpoints this process disabled by the rule",
            Listed(m.webhook_disabled.clone()),
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

    /// Records a job's handler starting `waited` after the job became runnable.
    pub fn started(&self, queue: &'static str, waited: Duration) {
        self.queue_latency
            .get_or_create(&QueueLabels { queue })
            .observe(waited.as_secs_f64());
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
    /// The token pass's refreshes, by outcome.
    pub token_refreshes: Family<TokenLabels, Counter>,
}

/// A proactive token refresh, by outcome.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct TokenLabels {
    pub outcome: TokenOutcome,
}

impl SchedulerMetrics {
    /// `reconcile_passes_total`, `reconciled_total{kind}` (`step`, `admission`, `cancel`),
    /// `schedule_fire_lag_seconds`, `schedule_fires_total{outcome}`,
    /// `schedule_missed_fires_total{schedule_id}`, `schedules_due`, `pruned_total{kind}`,
    /// `token_refreshes_total{outcome}`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self {
            passes: Counter::default(),
            reconciled: Family::default(),
            fire_lag: Histogram::new(exponential_buckets(0.001, 2.0, 18)),
            fires: Family::default(),
            missed: Family::default(),
            due: Gauge::default(),
            pruned: Family::default(),
            token_refreshes: Family::default(),
        };
        registry.register(
            "reconcile_passes",
            "Reconcile passes run",
            Listed(m.passes.clone()),
        );
        registry.register(
            "reconciled",
            "Jobs the reconciler re-enqueued, by kind (step, admission, cancel)",
            Listed(m.reconciled.clone()),
        );
        registry.register_with_unit(
            "schedule_fire_lag",
            "Seconds from a tick's instant to its run being recorded (ticks fired as they came due)",
            prometheus_client::registry::Unit::Seconds,
            Listed(m.fire_lag.clone()),
        );
        registry.register(
            "schedule_fires",
            "Ticks and how they ended up (started, skipped_overlap, buffered, invalid)",
            Listed(m.fires.clone()),
        );
        registry.register(
            "schedule_missed_fires",
            "Ticks recorded missed (they came due while no scheduler ran), by schedule",
            Listed(m.missed.clone()),
        );
        registry.register(
            "schedules_due",
            "Schedules due at the last look",
            Listed(m.due.clone()),
        );
        registry.register(
            "pruned",
            "Rows removed by the pruning duty, by kind (events, schedulers)",
            Listed(m.pruned.clone()),
        );
        registry.register(
            "token_refreshes",
            "Proactive LWA token refreshes of the scheduler, by outcome (refreshed, reauth_required, error)",
            Listed(m.token_refreshes.clone()),
        );
        for outcome in TokenOutcome::ALL {
            m.token_refreshed(outcome, 0);
        }
        m
    }

    /// Counts `n` token refreshes that ended as `outcome`.
    pub fn token_refreshed(&self, outcome: TokenOutcome, n: usize) {
        let c = self.token_refreshes.get_or_create(&TokenLabels { outcome });
        c.inc_by(n as u64);
    }
}

/// An AMC or LWA call, by operation and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct AmcCallLabels {
    pub operation: AmcOperation,
    pub status: CallStatus,
}

/// An AMC or LWA operation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct AmcOperationLabels {
    pub operation: AmcOperation,
}

/// The AMC and LWA clients' series (worker and scheduler).
#[derive(Debug, Clone)]
pub struct AmcMetrics {
    pub calls: Family<AmcCallLabels, Counter>,
    pub duration: Family<AmcOperationLabels, Histogram>,
}

impl AmcMetrics {
    /// `amc_requests_total{operation,status}`, `amc_request_duration_seconds{operation}`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self {
            calls: Family::default(),
            duration: Family::new_with_constructor(histogram),
        };
        registry.register(
            "amc_requests",
            "AMC and LWA calls, by operation and status (the HTTP code, or timeout, error)",
            Listed(m.calls.clone()),
        );
        registry.register(
            "amc_request_duration_seconds",
            "Time from sending an AMC or LWA request to its answer's headers, by operation",
            Listed(m.duration.clone()),
        );
        m
    }

    /// Records one call.
    pub fn record(&self, operation: AmcOperation, status: CallStatus, took: Duration) {
        self.calls
            .get_or_create(&AmcCallLabels { operation, status })
            .inc();
        self.duration
            .get_or_create(&AmcOperationLabels { operation })
            .observe(took.as_secs_f64());
    }
}

/// An instance: our UUID, or `other` for the instances past the label bound.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct InstanceLabels {
    pub instance_id: String,
}

/// Queued runs of an instance, by why they wait.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct WaitingLabels {
    pub instance_id: String,
    pub reason: &'static str,
}

/// A status.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct StatusLabels {
    pub status: &'static str,
}

/// What a refresh of the shared-state gauges could not read (`postgres`, `redis`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct SourceLabels {
    pub source: &'static str,
}

/// Gauges of state every process shares (queues, runs, collections, endpoints, workers),
/// set by the scheduler's metrics duty ([`gauges`]). Every scheduler replica exports
/// them: take `max` over replicas.
#[derive(Debug, Default)]
pub struct StateMetrics {
    pub depth: Family<QueueLabels, Gauge>,
    pub delayed: Family<QueueLabels, Gauge>,
    pub pending: Family<QueueLabels, Gauge>,
    pub dead: Family<QueueLabels, Gauge>,
    pub oldest_age: Family<QueueLabels, Gauge<f64, AtomicU64>>,
    pub runnable: Family<QueueLabels, Gauge>,
    pub slots: Family<InstanceLabels, Gauge>,
    pub waiting: Family<WaitingLabels, Gauge>,
    pub windows: Family<StatusLabels, Gauge>,
    pub collections: Family<StatusLabels, Gauge>,
    pub disabled_endpoints: Gauge,
    pub workers_alive: Gauge,
    pub failures: Family<SourceLabels, Counter>,
    /// The instance label sets set by the last refresh (those gone are removed).
    pub(crate) seen: std::sync::Mutex<gauges::Seen>,
}

impl StateMetrics {
    /// `queue_depth{queue}`, `queue_delayed{queue}`, `queue_pending{queue}`,
    /// `queue_dead_jobs{queue}`, `queue_oldest_job_age_seconds{queue}`,
    /// `runnable_jobs{queue}`, `instance_slots_in_use{instance_id}`,
    /// `instance_waiting_runs{instance_id,reason}`, `collection_windows{status}`,
    /// `collections_open{status}`, `webhook_disabled_endpoints`, `workers_alive`,
    /// `state_refresh_failures_total{source}`.
    pub fn register(registry: &mut Registry) -> Arc<Self> {
        let m = Arc::new(Self::default());
        let per_queue = [
            (
                "queue_depth",
                "Jobs in a queue's stream not yet delivered to a worker",
                &m.depth,
            ),
            (
                "queue_delayed",
                "Jobs in a queue's delayed set (retries, and jobs due later)",
                &m.delayed,
            ),
            (
                "queue_pending",
                "Jobs fetched by a worker and not yet acknowledged (running or about to)",
                &m.pending,
            ),
            (
                "queue_dead_jobs",
                "Rows of dead_jobs (jobs the queue gave up on), by queue",
                &m.dead,
            ),
            (
                "runnable_jobs",
                "Work that can run now, by the queue it runs on: queued runs that free instance and account slots admit (execution.submit), steps due (next_check_at passed) and webhook deliveries due; the autoscaling signal",
                &m.runnable,
            ),
        ];
        for (name, help, family) in per_queue {
            registry.register(name, help, Listed(family.clone()));
        }
        registry.register(
            "queue_oldest_job_age_seconds",
            "Age of the oldest job waiting to start: since its stream entry (push, promotion or hand-back), or since the due time of a delayed job not promoted; 0 when none waits",
            Listed(m.oldest_age.clone()),
        );
        registry.register(
            "instance_slots_in_use",
            "Runs submitting or running, by instance (the 500 busiest; the rest as instance_id=\"other\")",
            Listed(m.slots.clone()),
        );
        registry.register(
            "instance_waiting_runs",
            "Queued runs, by instance (as instance_slots_in_use) and why they wait",
            Listed(m.waiting.clone()),
        );
        registry.register(
            "collection_windows",
            "Windows of open collections, by status (pending, active, succeeded, failed, cancelled)",
            Listed(m.windows.clone()),
        );
        registry.register(
            "collections_open",
            "Collections not yet ended, by status (running, paused)",
            Listed(m.collections.clone()),
        );
        registry.register(
            "webhook_disabled_endpoints",
            "Webhook endpoints disabled now (by the rule or by hand)",
            Listed(m.disabled_endpoints.clone()),
        );
        registry.register(
            "workers_alive",
            "Worker processes whose heartbeat is fresh (within 10 s) and that have not stopped",
            Listed(m.workers_alive.clone()),
        );
        registry.register(
            "state_refresh_failures",
            "Refreshes of these gauges that could not read a source (postgres, redis); its gauges keep their last values until it answers",
            Listed(m.failures.clone()),
        );
        for source in ["postgres", "redis"] {
            m.failures.get_or_create(&SourceLabels { source }).inc_by(0);
        }
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
