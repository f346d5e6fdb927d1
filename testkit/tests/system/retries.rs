//! Transient AMC failures are retried with back-off, the attempt persisted on the row;
//! a step that keeps failing ends the run with the reason.

use crate::{SQL, assert_all_succeeded, rendered, runs_per_sql};
use amc_sim::faults::{FaultPlan, FaultRoute, FaultRule, HttpFault};
use serde_json::json;
use std::time::Duration;
use testkit::{System, SystemOptions, wait_until};

fn rule(route: FaultRoute, probability: f64, fault: HttpFault) -> FaultRule {
    FaultRule {
        route,
        probability,
        fault,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_5xx_and_429_are_retried_until_every_run_succeeds_once() {
    let mut opts = SystemOptions::default();
    opts.sim.faults = FaultPlan {
        rules: vec![
            rule(FaultRoute::Create, 0.3, HttpFault::ServerError(500)),
            rule(
                FaultRoute::Get,
                0.2,
                HttpFault::TooManyRequests {
                    retry_after_secs: 1,
                },
            ),
            rule(FaultRoute::Get, 0.1, HttpFault::GatewayTimeout),
            rule(FaultRoute::DownloadUrls, 0.2, HttpFault::ServerError(503)),
        ],
    };
    let sys = System::start(opts).await.expect("system");
    let mut c = sys.client();
    c.register_and_login("retry@example.com").await;
    let setup = c.first_run_setup("amcretry", 10, SQL, json!({})).await;
    let mut ids = Vec::new();
    for n in 0..20u64 {
        ids.push(c.run(&setup.workflow_id, json!({"n": n})).await);
    }
    let runs = c.wait_terminal(&ids, Duration::from_secs(120)).await;
    assert_all_succeeded(&runs);
    let per = runs_per_sql(&sys.sim_stats().await.unwrap());
    for n in 0..20u64 {
        assert_eq!(
            per.get(&rendered(n)).copied(),
            Some(1),
            "AMC runs for run {n}"
        );
    }
    sys.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_that_keeps_failing_shows_its_attempts_then_fails_with_the_reason() {
    let mut opts = SystemOptions::default();
    opts.sim.faults = FaultPlan {
        rules: vec![rule(FaultRoute::Create, 1.0, HttpFault::ServerError(500))],
    };
    opts.env.push(("AMP_MAX_ATTEMPTS", "3".into()));
    let sys = System::start(opts).await.expect("system");
    let mut c = sys.client();
    c.register_and_login("giveup@example.com").await;
    let setup = c.first_run_setup("amcgiveup", 10, SQL, json!({})).await;
    let id = c.run(&setup.workflow_id, json!({"n": 1})).await;
    let retried = wait_until(Duration::from_secs(30), || async {
        let (_, e) = c.get(&format!("/executions/{id}")).await;
        e["status"] == "submitting"
            && e["attempt"].as_i64().unwrap_or(0) >= 1
            && e["next_check_at"].is_string()
    })
    .await;
    assert!(
        retried,
        "the attempt and next check are persisted while retrying"
    );
    let runs = c
        .wait_terminal(std::slice::from_ref(&id), Duration::from_secs(60))
        .await;
    let e = &runs[0];
    assert_eq!(e["status"], "failed", "{e}");
    assert_eq!(e["error"]["code"], "amc_unavailable", "{e}");
    assert!(
        e["error"]["message"].as_str().unwrap().contains("500"),
        "{e}"
    );
    assert_eq!(
        runs_per_sql(&sys.sim_stats().await.unwrap()).get(&rendered(1)),
        None,
        "AMC never created it"
    );
    sys.cleanup().await;
}
