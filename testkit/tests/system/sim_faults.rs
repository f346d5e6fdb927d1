//! amc-sim's drawn faults against the whole system: lost create answers, 429s everywhere and
//! FAILED runs. Every execution ends terminal with AMC's own words, and AMC holds exactly one
//! run per execution.

use crate::{SQL, assert_outcomes_match_amc};
use amc_sim::faults::FaultsDoc;
use serde_json::{Value, json};
use std::time::Duration;
use testkit::{System, SystemOptions};

const RUNS: u64 = 20;

fn throttle(route: &str) -> Value {
    json!({"route": route, "probability": 0.1,
           "fault": {"kind": "too_many_requests", "retry_after_secs": 1}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_answers_429s_and_failed_runs_end_with_one_amc_run_each() {
    let plan = json!({"seed": 1, "rules": [
        {"route": "create", "probability": 0.15, "fault": {"kind": "lost_answer", "mode": "bad_gateway"}},
        {"route": "create", "probability": 0.15, "fault": {"kind": "lost_answer", "mode": "drop"}},
        throttle("create"), throttle("get"), throttle("list"), throttle("download_urls"),
        {"route": "run", "probability": 0.2, "fault": {"kind": "failed"}},
    ]});
    let doc = FaultsDoc::from_value(&plan).expect("fault plan");
    let mut opts = SystemOptions::default();
    opts.sim.faults = doc.plan;
    opts.sim.seed = doc.seed.expect("seed");
    let sys = System::start(opts).await.expect("system");
    let mut c = sys.client();
    c.register_and_login("simfaults@example.com").await;
    let setup = c.first_run_setup("amcsimfaults", 10, SQL, json!({})).await;
    let mut ids = Vec::new();
    for n in 0..RUNS {
        ids.push(c.run(&setup.workflow_id, json!({"n": n})).await);
    }
    let runs = c.wait_terminal(&ids, Duration::from_secs(90)).await;

    let stats = sys.sim_stats().await.expect("sim stats");
    assert_eq!(runs.len() as u64, RUNS);
    let failed = assert_outcomes_match_amc(&runs, &stats);
    let injected = &stats["faults_injected"];
    assert!(failed > 0, "the seed fails some runs: {injected}");
    assert!(
        injected["lost_answer"].as_u64().unwrap_or(0) > 0,
        "the seed loses some answers: {injected}"
    );
    assert!(
        injected["too_many_requests"].as_u64().unwrap_or(0) > 0,
        "the seed throttles some calls: {injected}"
    );
    eprintln!("faults injected: {injected}, failed runs: {failed}");
    sys.cleanup().await;
}
