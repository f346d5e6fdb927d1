//! Every process serves `/metrics` the strict parser accepts, with the series of a run
//! that went through: queue-to-start latency, AMC calls by operation and status.

use crate::Observed;
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_process_serves_metrics_that_parse_with_a_run_recorded() {
    let o = Observed::start(1, Vec::new()).await;
    let mut c = o.sys.client();
    c.register_and_login("scrape@example.com").await;
    let setup = c
        .first_run_setup(
            "amcscrape",
            2,
            "SELECT 1 AS one FROM dsp_impressions",
            json!({}),
        )
        .await;
    let id = c.run(&setup.workflow_id, json!({})).await;
    let runs = c.wait_terminal(&[id], Duration::from_secs(30)).await;
    assert_eq!(runs[0]["status"], "succeeded", "{}", runs[0]);

    let api = o.scrape(&o.sys.api_url).await;
    assert!(
        api.sum(
            "http_requests_total",
            &[("route", "/api/v1/executions/{id}")]
        ) >= 1.0
    );

    let worker = o.scrape(&o.worker).await;
    for queue in ["execution.submit", "execution.poll", "execution.fetch"] {
        let started = worker.sum("job_queue_latency_seconds_count", &[("queue", queue)]);
        assert!(started >= 1.0, "no start recorded on {queue}");
    }
    let creates: Vec<_> = worker
        .samples("amc_requests_total")
        .filter(|s| s.labels["operation"] == "create_execution")
        .collect();
    assert_eq!(creates.len(), 1, "{creates:?}");
    assert_eq!(creates[0].labels["status"], "200", "{creates:?}");
    assert_eq!(creates[0].value, 1.0);
    assert!(worker.sum("amc_requests_total", &[("operation", "get_execution")]) >= 1.0);
    assert!(worker.sum("amc_requests_total", &[("operation", "download_urls")]) >= 1.0);
    assert!(
        worker.sum(
            "amc_request_duration_seconds_count",
            &[("operation", "create_execution")]
        ) == 1.0
    );

    let scheduler = o
        .scrape_until(&o.scheduler, |e| e.value("workers_alive", &[]) == Some(1.0))
        .await;
    assert_eq!(scheduler.value("workers_alive", &[]), Some(1.0));
    assert_eq!(
        scheduler.value("collections_open", &[("status", "running")]),
        Some(0.0)
    );
    assert!(scheduler.value("token_refreshes_total", &[("outcome", "error")]) == Some(0.0));
    o.cleanup().await;
}
