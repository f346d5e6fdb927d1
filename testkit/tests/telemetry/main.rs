//! Telemetry tests: every process's `/metrics` parses with a strict OpenMetrics parser, the
//! shared-state gauges equal the real state of Redis and Postgres, every metric name the
//! alerting rules use is exported by some process, and each process's `/readyz` follows
//! Postgres and Redis. Run `cargo build --workspace --bins` first (`ops/test` does).

mod alerts;
mod deploy;
mod exposition;
mod promql;
mod ready;
mod scrape;
mod state;

use exposition::Exposition;
use std::time::Duration;
use testkit::{System, SystemOptions, free_port};

/// A system whose worker (if any) and scheduler serve their health addresses.
pub struct Observed {
    pub sys: System,
    /// `http://{AMP_WORKER_HEALTH_ADDR}`.
    pub worker: String,
    /// `http://{AMP_SCHEDULER_HEALTH_ADDR}`.
    pub scheduler: String,
}

impl Observed {
    /// Starts the system with `workers` (0 or 1) and `env`, the gauges refreshed every
    /// 200 ms.
    pub async fn start(workers: usize, env: Vec<(&'static str, String)>) -> Self {
        let worker = format!("127.0.0.1:{}", free_port());
        let scheduler = format!("127.0.0.1:{}", free_port());
        let mut all = vec![
            ("AMP_WORKER_HEALTH_ADDR", worker.clone()),
            ("AMP_SCHEDULER_HEALTH_ADDR", scheduler.clone()),
            ("AMP_METRICS_INTERVAL", "200ms".to_owned()),
        ];
        all.extend(env);
        let sys = System::start(SystemOptions {
            workers,
            env: all,
            ..SystemOptions::default()
        })
        .await
        .expect("system");
        Self {
            sys,
            worker: format!("http://{worker}"),
            scheduler: format!("http://{scheduler}"),
        }
    }

    /// `base`'s `/metrics`, parsed (the test fails on any violation of the format).
    pub async fn scrape(&self, base: &str) -> Exposition {
        let resp = self
            .sys
            .http
            .get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {base}/metrics: {e}"));
        assert!(
            resp.status().is_success(),
            "{base}/metrics: {}",
            resp.status()
        );
        let kind = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(
            kind.starts_with("application/openmetrics-text"),
            "{base}: {kind}"
        );
        let text = resp.text().await.expect("metrics text");
        exposition::parse(&text).unwrap_or_else(|e| panic!("{base}/metrics: {e}\n{text}"))
    }

    /// Scrapes `base` until `ok` holds (within 20 s); returns the last scrape.
    pub async fn scrape_until(&self, base: &str, ok: impl Fn(&Exposition) -> bool) -> Exposition {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let up = self.sys.http.get(format!("{base}/healthz")).send().await;
            if up.is_ok_and(|r| r.status().is_success()) {
                let e = self.scrape(base).await;
                if ok(&e) || tokio::time::Instant::now() >= deadline {
                    return e;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{base} never came up"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn cleanup(self) {
        self.sys.cleanup().await;
    }
}
