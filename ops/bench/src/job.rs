//! The benchmark job payload `{"run","seq","enq_ns","due_ns"}` and the shared settings.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use queue::QueueConfig;
use serde::{Deserialize, Serialize};

/// Key prefix of the benchmark queue (`bench:q:bench`, `bench:q:bench:delayed`).
pub const PREFIX: &str = "bench";
/// Queue name used by producer and worker.
pub const QUEUE: &str = "bench";
/// Redis URL used when `BENCH_REDIS_URL` is not set (DB 5, as the harness).
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379/5";

/// One no-op benchmark job, exactly the harness's payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BenchJob {
    /// Run id (records go to `bench:rec:<run>`).
    pub run: String,
    /// Sequence number within the run.
    pub seq: u64,
    /// Wall clock (ns) read just before the enqueue call.
    pub enq_ns: u64,
    /// Wall clock (ns) at which the job is due (`enq_ns` + delay).
    pub due_ns: u64,
}

/// Wall clock (CLOCK_REALTIME) in nanoseconds since the Unix epoch.
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The `SystemTime` of a nanosecond wall-clock value.
pub fn system_time(ns: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(ns)
}

/// `BENCH_REDIS_URL` or [`DEFAULT_REDIS_URL`].
pub fn redis_url() -> String {
    std::env::var("BENCH_REDIS_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_REDIS_URL.to_owned())
}

/// `BENCH_FLUSH_MS` (default 50, at least 1) as a duration.
pub fn flush_ms() -> Duration {
    parse_flush_ms(std::env::var("BENCH_FLUSH_MS").ok().as_deref())
}

fn parse_flush_ms(v: Option<&str>) -> Duration {
    let ms = v
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|ms| ms.is_finite() && *ms >= 1.0)
        .unwrap_or(50.0);
    Duration::from_secs_f64(ms / 1000.0)
}

/// The production queue defaults with the benchmark's URL and prefix.
pub fn queue_config(url: &str) -> QueueConfig {
    QueueConfig::new(url, PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_is_the_harness_shape() {
        let j = BenchJob {
            run: "w1-x".into(),
            seq: 3,
            enq_ns: 10,
            due_ns: 20,
        };
        let v = serde_json::to_value(&j).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"run": "w1-x", "seq": 3, "enq_ns": 10, "due_ns": 20})
        );
        let back: BenchJob = serde_json::from_value(v).unwrap();
        assert_eq!(back, j);
    }

    #[test]
    fn flush_ms_defaults_and_parses() {
        assert_eq!(parse_flush_ms(None), Duration::from_millis(50));
        assert_eq!(parse_flush_ms(Some("1000")), Duration::from_secs(1));
        assert_eq!(parse_flush_ms(Some("junk")), Duration::from_millis(50));
        assert_eq!(parse_flush_ms(Some("0")), Duration::from_millis(50));
    }

    #[test]
    fn clock_is_sane() {
        let a = now_ns();
        assert!(a > 1_700_000_000_000_000_000);
        assert_eq!(
            system_time(a)
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64,
            a
        );
    }
}
