//! Injected run-level faults: FAILED runs with AMC's reasons, PUBLISHING/REJECTED detours,
//! results unavailable for a while after SUCCEEDED; reproducible and per instance.

use std::sync::Arc;
use std::time::Duration;

use amc_sim::ManualClock;
use serde_json::{Value, json};

use crate::TestSim;

const RUN: Duration = Duration::from_secs(10);

async fn on_manual_clock(plan: Value) -> (TestSim, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let t = TestSim::start_with_clock(|c| c.run_duration = RUN, clock.clone()).await;
    let resp = t.admin_post("faults", plan).await;
    assert_eq!(resp.status(), 200, "{:?}", resp.text().await);
    (t, clock)
}

fn run_rule(probability: f64, fault: Value) -> Value {
    json!({"seed": 3, "rules": [{"route": "run", "probability": probability, "fault": fault}]})
}

fn id(v: &Value) -> String {
    v["workflowExecutionId"].as_str().expect("id").to_owned()
}

#[tokio::test]
async fn failed_runs_carry_amc_reasons_in_answers_and_stats() {
    let (t, clock) = on_manual_clock(run_rule(
        1.0,
        json!({"kind": "failed", "reason": "compile"}),
    ))
    .await;
    let e = id(&t.create("SELECT doomed").await);
    clock.advance(RUN);
    let v = t.get(&e).await;
    assert_eq!(v["status"], "FAILED");
    let reason = v["statusReason"].as_str().expect("reason");
    assert_eq!(
        reason,
        format!(
            "Was unable to compile workflow {} because it was found to be invalid: Filter operation filter_operation referenced an undeclared parameter ad_product_type.",
            v["workflowId"].as_str().expect("workflowId")
        )
    );
    let stats = t.admin_get("stats").await;
    assert_eq!(stats["runs"][0]["status"], "FAILED");
    assert_eq!(stats["runs"][0]["status_reason"], reason);
    assert_eq!(stats["faults_injected"]["failed"], 1);
    assert_eq!(stats["max_running_seen"], 1);
}

#[tokio::test]
async fn drawn_reasons_cover_compile_privacy_and_timeout() {
    let (t, clock) = on_manual_clock(run_rule(1.0, json!({"kind": "failed"}))).await;
    for n in 0..30 {
        t.create(&format!("SELECT reason_{n}")).await;
    }
    clock.advance(RUN * 3);
    let stats = t.admin_get("stats").await;
    let reasons: Vec<&str> = stats["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .map(|r| r["status_reason"].as_str().expect("reason"))
        .collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.starts_with("Was unable to compile workflow"))
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("overlapping time windows"))
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.starts_with("Workflow execution timed out"))
    );
    assert_eq!(stats["max_running_seen"], 10);
}

/// The SQL of the runs that ended FAILED, among 40 runs with a 20% FAILED rule.
async fn failed_set(seed: u64, instance: &str) -> Vec<String> {
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let mut t = TestSim::start_with_clock(|c| c.run_duration = Duration::ZERO, clock.clone()).await;
    t.instance = instance.to_owned();
    let plan = json!({"seed": seed, "rules": [
        {"route": "run", "probability": 0.2, "fault": {"kind": "failed"}}]});
    assert_eq!(t.admin_post("faults", plan).await.status(), 200);
    for n in 0..40 {
        t.create(&format!("SELECT fraction_{n}")).await;
    }
    clock.advance(Duration::from_secs(1));
    let stats = t.admin_get("stats").await;
    let mut failed: Vec<String> = stats["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .filter(|r| r["status"] == "FAILED")
        .map(|r| r["sql_query"].as_str().unwrap_or_default().to_owned())
        .collect();
    failed.sort();
    let others = stats["runs"].as_array().expect("runs").len() - failed.len();
    assert_eq!(others + failed.len(), 40);
    failed
}

#[tokio::test]
async fn failed_runs_are_reproducible_and_per_instance() {
    let a = failed_set(1, "amcfractiona").await;
    assert!((2..=20).contains(&a.len()), "about 20% failed: {a:?}");
    assert_eq!(a, failed_set(1, "amcfractiona").await);
    assert_ne!(a, failed_set(1, "amcfractionb").await);
    assert_ne!(a, failed_set(2, "amcfractiona").await);
}

#[tokio::test]
async fn publishing_shows_for_a_while_before_succeeded() {
    let (t, clock) = on_manual_clock(run_rule(
        1.0,
        json!({"kind": "status_detour", "status": "PUBLISHING", "duration_ms": 5000}),
    ))
    .await;
    let e = id(&t.create("SELECT publishing").await);
    clock.advance(RUN);
    assert_eq!(t.get(&e).await["status"], "PUBLISHING");
    let dl = t
        .amc(reqwest::Method::GET, &format!("/{e}/downloadUrls"))
        .send()
        .await
        .expect("dl");
    assert_eq!(dl.status(), 404);
    clock.advance(Duration::from_secs(5));
    assert_eq!(t.get(&e).await["status"], "SUCCEEDED");
    // A PUBLISHING run does not hold a RUNNING slot.
    assert_eq!(
        t.admin_get("stats").await["faults_injected"]["status_detour"],
        1
    );
}

#[tokio::test]
async fn rejected_shows_for_a_while_then_failed_with_the_same_reason() {
    let (t, clock) = on_manual_clock(run_rule(
        1.0,
        json!({"kind": "status_detour", "status": "REJECTED", "duration_ms": 5000}),
    ))
    .await;
    let e = id(&t.create("SELECT rejected").await);
    clock.advance(RUN);
    let v = t.get(&e).await;
    assert_eq!(v["status"], "REJECTED");
    let reason = v["statusReason"].as_str().expect("reason").to_owned();
    assert!(reason.contains("overlapping time windows"), "{reason}");
    clock.advance(Duration::from_secs(5));
    let v = t.get(&e).await;
    assert_eq!(v["status"], "FAILED");
    assert_eq!(v["statusReason"], reason.as_str());
}

#[tokio::test]
async fn results_stay_unavailable_for_a_while_after_succeeded() {
    let (t, clock) = on_manual_clock(run_rule(
        1.0,
        json!({"kind": "late_download", "delay_ms": 7000}),
    ))
    .await;
    let e = id(&t.create("SELECT late").await);
    clock.advance(RUN);
    assert_eq!(t.get(&e).await["status"], "SUCCEEDED");
    let url = format!("/{e}/downloadUrls");
    let early = t.amc(reqwest::Method::GET, &url).send().await.expect("dl");
    assert_eq!(early.status(), 404);
    assert_eq!(
        early.json::<Value>().await.expect("json")["details"],
        format!("Execution with ID {e} is unavailable for download.")
    );
    clock.advance(Duration::from_secs(7));
    let ready = t.amc(reqwest::Method::GET, &url).send().await.expect("dl");
    assert_eq!(ready.status(), 200);
}
