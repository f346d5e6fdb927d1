//! Hand-rolled Prometheus metrics: `http_requests_total{method,status}` and the
//! `http_request_duration_seconds` histogram, kept in atomics.

use poem::{Endpoint, IntoResponse, Request, Response};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

/// Upper bounds (seconds) of the duration histogram's buckets.
pub const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The API's request metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: RwLock<BTreeMap<(String, u16), Arc<AtomicU64>>>,
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Metrics {
    /// Records one finished request.
    pub fn record(&self, method: &str, status: u16, seconds: f64) {
        let key = (method.to_string(), status);
        let existing = self.requests.read().ok().and_then(|m| m.get(&key).cloned());
        let counter = match existing {
            Some(c) => c,
            None => match self.requests.write() {
                Ok(mut m) => m.entry(key).or_default().clone(),
                Err(_) => return,
            },
        };
        counter.fetch_add(1, Ordering::Relaxed);
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                self.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
    }

    /// The Prometheus text exposition (format 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP http_requests_total HTTP requests answered, by method and status.\n");
        out.push_str("# TYPE http_requests_total counter\n");
        if let Ok(m) = self.requests.read() {
            for ((method, status), c) in m.iter() {
                let _ = writeln!(
                    out,
                    "http_requests_total{{method=\"{method}\",status=\"{status}\"}} {}",
                    c.load(Ordering::Relaxed)
                );
            }
        }
        out.push_str("# HELP http_request_duration_seconds Time to answer an HTTP request.\n");
        out.push_str("# TYPE http_request_duration_seconds histogram\n");
        for (i, bound) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "http_request_duration_seconds_bucket{{le=\"{bound}\"}} {}",
                self.buckets[i].load(Ordering::Relaxed)
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "http_request_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "http_request_duration_seconds_sum {sum}");
        let _ = writeln!(out, "http_request_duration_seconds_count {count}");
        out
    }
}

/// Middleware body recording every request (method label limited to the standard verbs).
pub async fn metrics_layer<E: Endpoint>(
    ep: Arc<E>,
    req: Request,
    metrics: Arc<Metrics>,
) -> poem::Result<Response> {
    let method = match req.method().as_str() {
        m @ ("GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD" | "OPTIONS") => m,
        _ => "OTHER",
    }
    .to_string();
    let start = Instant::now();
    let resp = ep.get_response(req).await.into_response();
    metrics.record(
        &method,
        resp.status().as_u16(),
        start.elapsed().as_secs_f64(),
    );
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histogram() {
        let m = Metrics::default();
        m.record("GET", 200, 0.003);
        m.record("GET", 200, 0.2);
        m.record("POST", 422, 20.0);
        let text = m.render();
        assert!(text.contains("http_requests_total{method=\"GET\",status=\"200\"} 2"));
        assert!(text.contains("http_requests_total{method=\"POST\",status=\"422\"} 1"));
        assert!(text.contains("http_request_duration_seconds_bucket{le=\"0.005\"} 1"));
        assert!(text.contains("http_request_duration_seconds_bucket{le=\"0.25\"} 2"));
        assert!(text.contains("http_request_duration_seconds_bucket{le=\"+Inf\"} 3"));
        assert!(text.contains("http_request_duration_seconds_count 3"));
    }
}
