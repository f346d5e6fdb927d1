//! Cancellation in every state: queued, running, in doubt (the create's answer held),
//! fetching, and submitting (AMC refusing the create with 429). Each ends `cancelled`;
//! AMC's run is cancelled wherever one exists.

use crate::{SQL, rendered};
use amc_sim::faults::{FaultPlan, FaultRoute, FaultRule, HttpFault};
use serde_json::{Value, json};
use std::time::Duration;
use testkit::{Client, System, SystemOptions, wait_until};

async fn status_of(c: &Client, id: &str) -> Value {
    c.get(&format!("/executions/{id}")).await.1
}

async fn wait_status(c: &Client, id: &str, status: &str, secs: u64) {
    let ok = wait_until(Duration::from_secs(secs), || async move {
        status_of(c, id).await["status"] == status
    })
    .await;
    assert!(ok, "never {status}: {}", status_of(c, id).await);
}

async fn cancel(c: &Client, id: &str) -> (u16, Value) {
    c.post(&format!("/executions/{id}/cancel"), json!({})).await
}

async fn sim_run_status(sys: &System, n: u64) -> Option<String> {
    let runs = sys.sim_runs_matching(&rendered(n)).await.unwrap();
    assert!(runs.len() <= 1, "one AMC run per execution: {runs:?}");
    runs.first()
        .and_then(|r| r["status"].as_str().map(str::to_string))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_queued_running_in_doubt_or_fetching_run_ends_it_cancelled() {
    let mut opts = SystemOptions::default();
    opts.sim.run_duration = Duration::from_secs(60);
    // Results never become downloadable, so a succeeded run stays `fetching`.
    opts.sim.faults = FaultPlan {
        rules: vec![FaultRule {
            route: FaultRoute::DownloadUrls,
            probability: 1.0,
            fault: HttpFault::ServerError(503),
        }],
    };
    opts.env.push(("AMP_MAX_ATTEMPTS", "30".to_string()));
    let sys = System::start(opts).await.expect("system");
    let mut c = sys.client();
    c.register_and_login("cancel@example.com").await;
    let setup = c.first_run_setup("amccancel", 1, SQL, json!({})).await;
    let wf = setup.workflow_id.clone();

    // Running: AMC's run is cancelled, then the execution ends.
    let running = c.run(&wf, json!({"n": 1})).await;
    wait_status(&c, &running, "running", 15).await;
    // Queued behind it (cap 1): cancelled at once.
    let queued = c.run(&wf, json!({"n": 2})).await;
    assert_eq!(status_of(&c, &queued).await["status"], "queued");
    let (s, b) = cancel(&c, &queued).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["status"], "cancelled", "{b}");
    let (s, b) = cancel(&c, &running).await;
    assert_eq!(s, 200, "{b}");
    assert!(b["cancel_requested_at"].is_string(), "{b}");
    wait_status(&c, &running, "cancelled", 15).await;
    assert_eq!(sim_run_status(&sys, 1).await.as_deref(), Some("CANCELLED"));
    assert_eq!(
        sim_run_status(&sys, 2).await,
        None,
        "the queued run never reached AMC"
    );

    // In doubt: the create reached AMC but its answer is held when the cancel comes.
    sys.sim_admin("hold-next-create", json!({})).await.unwrap();
    let doubt = c.run(&wf, json!({"n": 3})).await;
    let held = wait_until(Duration::from_secs(15), || {
        let sys = &sys;
        async move {
            let r = sys
                .http
                .get(format!("{}/sim/admin/held", sys.sim.base_url()))
                .send()
                .await;
            match r {
                Ok(r) => r
                    .json::<Value>()
                    .await
                    .map(|v| v["held"] == 1)
                    .unwrap_or(false),
                Err(_) => false,
            }
        }
    })
    .await;
    assert!(held, "the create was never held");
    let (s, b) = cancel(&c, &doubt).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["status"], "submitting", "{b}");
    sys.sim_admin("release", json!({})).await.unwrap();
    wait_status(&c, &doubt, "cancelled", 20).await;
    assert_eq!(sim_run_status(&sys, 3).await.as_deref(), Some("CANCELLED"));

    // Fetching: AMC's run already succeeded (nothing to cancel there).
    sys.sim_admin("config", json!({"run_duration_ms": 100}))
        .await
        .unwrap();
    let fetching = c.run(&wf, json!({"n": 4})).await;
    wait_status(&c, &fetching, "fetching", 15).await;
    let (s, b) = cancel(&c, &fetching).await;
    assert_eq!(s, 200, "{b}");
    wait_status(&c, &fetching, "cancelled", 15).await;
    assert_eq!(sim_run_status(&sys, 4).await.as_deref(), Some("SUCCEEDED"));

    let stats = sys.sim_stats().await.unwrap();
    assert_eq!(
        stats["cancels"].as_u64(),
        Some(2),
        "running and in-doubt runs cancelled at AMC"
    );
    assert_eq!(stats["creates"].as_u64(), Some(3));
    // An ended run cannot be cancelled again.
    assert_eq!(cancel(&c, &running).await.0, 409);
    sys.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_submitting_run_that_amc_keeps_refusing_ends_it_cancelled() {
    let mut opts = SystemOptions::default();
    opts.sim.faults = FaultPlan {
        rules: vec![FaultRule {
            route: FaultRoute::Create,
            probability: 1.0,
            fault: HttpFault::TooManyRequests {
                retry_after_secs: 2,
            },
        }],
    };
    let sys = System::start(opts).await.expect("system");
    let mut c = sys.client();
    c.register_and_login("cancelsub@example.com").await;
    let setup = c.first_run_setup("amccancelsub", 2, SQL, json!({})).await;
    let id = c.run(&setup.workflow_id, json!({"n": 5})).await;
    wait_status(&c, &id, "submitting", 15).await;
    // Let the first (throttled) create happen: the submission is now in doubt.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (s, b) = cancel(&c, &id).await;
    assert_eq!(s, 200, "{b}");
    wait_status(&c, &id, "cancelled", 15).await;
    let e = status_of(&c, &id).await;
    assert!(e["error"].is_null(), "{e}");
    assert!(e["amc_execution_id"].is_null(), "{e}");
    let stats = sys.sim_stats().await.unwrap();
    assert_eq!(stats["creates"].as_u64(), Some(0));
    assert_eq!(stats["cancels"].as_u64(), Some(0));
    sys.cleanup().await;
}
