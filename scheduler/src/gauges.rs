//! The gauges of shared state (`common::telemetry::metrics::gauges`), refreshed every
//! `AMP_METRICS_INTERVAL` (default 15 s): the queues in one Redis script call, the rest in
//! one Postgres statement. Every replica refreshes and exports them (dashboards and
//! alerts take `max` over the schedulers); the cost is two round trips per interval.

use crate::Scheduler;
use common::jobs::ALL_QUEUES;
use common::telemetry::metrics::{SourceLabels, gauges};

/// One refresh. A source that fails is counted in `state_refresh_failures_total`; its
/// gauges keep their last values.
pub async fn refresh(s: &Scheduler) {
    let (queues, state) = tokio::join!(s.inspector.snapshot(&ALL_QUEUES), gauges::read(&s.db));
    match queues {
        Ok(q) => s.state.record_queues(&q, queue::now_ms()),
        Err(e) => failed(s, "redis", &e),
    }
    match state {
        Ok(st) => s.state.record_state(&st),
        Err(e) => failed(s, "postgres", &e),
    }
}

fn failed(s: &Scheduler, source: &'static str, e: &(dyn std::error::Error + 'static)) {
    s.state
        .failures
        .get_or_create(&SourceLabels { source })
        .inc();
    tracing::warn!(
        source,
        error = %common::telemetry::chain(e),
        "could not refresh the shared-state gauges; trying again next interval"
    );
}
