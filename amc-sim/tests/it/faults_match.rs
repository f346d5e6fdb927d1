//! Fault rules limited by `match` (window, SQL marker) and `times`: "fail the first attempt
//! of windows 3, 17 and 40 and let their retries succeed", "fail every attempt of one window".

use std::sync::Arc;
use std::time::Duration;

use amc_sim::ManualClock;
use futures::future::join_all;
use serde_json::{Value, json};

use crate::TestSim;

const RUN: Duration = Duration::from_secs(10);
const SQL: &str = "SELECT campaign, SUM(impressions) FROM dsp_impressions GROUP BY campaign";

async fn on_manual_clock(plan: Value) -> (TestSim, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let t = TestSim::start_with_clock(
        |c| {
            c.run_duration = RUN;
            c.max_running = 100;
        },
        clock.clone(),
    )
    .await;
    let resp = t.admin_post("faults", plan).await;
    assert_eq!(resp.status(), 200, "{:?}", resp.text().await);
    (t, clock)
}

/// Window `n` (0-based): one week from 2026-01-05 on, as a data collection sends it.
fn window(n: i64) -> (String, String) {
    let start =
        chrono::NaiveDate::from_ymd_opt(2026, 1, 5).expect("date") + chrono::Duration::weeks(n);
    let end = start + chrono::Duration::weeks(1);
    let f = |d: chrono::NaiveDate| format!("{}T00:00:00", d.format("%Y-%m-%d"));
    (f(start), f(end))
}

fn body(sql: &str, n: i64) -> Value {
    let (start, end) = window(n);
    json!({"workflow": {"sqlQuery": sql}, "timeWindowType": "EXPLICIT",
           "timeWindowStart": start, "timeWindowEnd": end,
           "timeWindowTimeZone": "America/New_York"})
}

fn fail_first(n: i64) -> Value {
    json!({"route": "run", "probability": 1.0, "times": 1,
           "match": {"time_window_start": window(n).0},
           "fault": {"kind": "failed", "reason": "compile"}})
}

async fn status(t: &TestSim, id: &str) -> String {
    t.get(id).await["status"]
        .as_str()
        .expect("status")
        .to_owned()
}

#[tokio::test]
async fn the_first_attempt_of_windows_3_17_and_40_fails_and_retries_succeed() {
    let plan = json!({"rules": [fail_first(3), fail_first(17), fail_first(40)]});
    let (t, clock) = on_manual_clock(plan).await;
    let mut ids = Vec::new();
    for n in 0..45 {
        ids.push(t.create_body(body(SQL, n)).await);
    }
    clock.advance(RUN);
    for (n, id) in ids.iter().enumerate() {
        let want = if [3, 17, 40].contains(&n) {
            "FAILED"
        } else {
            "SUCCEEDED"
        };
        assert_eq!(status(&t, id).await, want, "window {n}");
    }
    // The retry of a failed window is a new execution with the same SQL and window.
    let retries: Vec<String> = join_all([3, 17, 40].map(|n| t.create_body(body(SQL, n)))).await;
    clock.advance(RUN);
    for id in &retries {
        assert_eq!(status(&t, id).await, "SUCCEEDED");
    }
    assert_eq!(t.admin_get("stats").await["faults_injected"]["failed"], 3);
    // The plan reads back with its limits.
    let read = t.admin_get("faults").await;
    assert_eq!(read["rules"][0]["times"], 1);
    assert_eq!(
        read["rules"][0]["match"]["time_window_start"],
        "2026-01-26T00:00:00"
    );
    assert_eq!(read["rules"][0]["fault"]["kind"], "failed");
}

#[tokio::test]
async fn a_rule_without_times_fails_every_attempt_of_its_window() {
    let plan = json!({"rules": [{"route": "run", "probability": 1.0,
        "match": {"time_window_start": window(2).0, "time_window_end": window(2).1},
        "fault": {"kind": "failed", "reason": "timeout"}}]});
    let (t, clock) = on_manual_clock(plan).await;
    let attempts: Vec<String> = join_all((0..4).map(|_| t.create_body(body(SQL, 2)))).await;
    let other = t.create_body(body(SQL, 1)).await;
    clock.advance(RUN);
    for id in &attempts {
        let v = t.get(id).await;
        assert_eq!(v["status"], "FAILED");
        assert!(
            v["statusReason"]
                .as_str()
                .is_some_and(|r| r.starts_with("Workflow execution timed out"))
        );
    }
    assert_eq!(status(&t, &other).await, "SUCCEEDED");
}

#[tokio::test]
async fn sql_contains_matches_a_marker_and_times_counts_per_rule() {
    let plan = json!({"rules": [
        {"route": "run", "probability": 1.0, "times": 2, "match": {"sql_contains": "/* fail_me */"},
         "fault": {"kind": "failed", "reason": "privacy"}},
        {"route": "run", "probability": 1.0, "times": 1, "match": {"sql_contains": "/* late */"},
         "fault": {"kind": "late_download", "delay_ms": 60000}},
    ]});
    let (t, clock) = on_manual_clock(plan).await;
    let marked = format!("{SQL} /* fail_me */");
    let both = format!("{SQL} /* fail_me */ /* late */");
    let plain = t.create_body(body(SQL, 0)).await;
    let first = t.create_body(body(&both, 0)).await;
    let second = t.create_body(body(&marked, 1)).await;
    let third = t.create_body(body(&marked, 2)).await;
    let late = t.create_body(body(&format!("{SQL} /* late */"), 3)).await;
    clock.advance(RUN);
    assert_eq!(status(&t, &plain).await, "SUCCEEDED");
    assert_eq!(status(&t, &first).await, "FAILED");
    assert_eq!(status(&t, &second).await, "FAILED");
    assert_eq!(
        status(&t, &third).await,
        "SUCCEEDED",
        "the first rule applied twice"
    );
    // The second rule counted `first` (its own first match), so `late` is not late.
    assert_eq!(status(&t, &late).await, "SUCCEEDED");
    let (code, _) =
        TestSim::send(t.amc(reqwest::Method::GET, &format!("/{late}/downloadUrls"))).await;
    assert_eq!(code, 200);
}

#[tokio::test]
async fn concurrent_creates_are_counted_exactly() {
    let plan = json!({"rules": [{"route": "run", "probability": 1.0, "times": 5,
        "match": {"time_window_start": window(7).0}, "fault": {"kind": "failed"}}]});
    let (t, clock) = on_manual_clock(plan).await;
    let ids: Vec<String> = join_all((0..20).map(|_| t.create_body(body(SQL, 7)))).await;
    clock.advance(RUN);
    let mut failed = 0;
    for id in &ids {
        if status(&t, id).await == "FAILED" {
            failed += 1;
        }
    }
    assert_eq!(failed, 5);
}

#[tokio::test]
async fn create_rules_match_the_request_and_count_attempts() {
    let plan = json!({"rules": [{"route": "create", "probability": 1.0, "times": 1,
        "match": {"time_window_start": window(5).0},
        "fault": {"kind": "server_error", "status": 503}}]});
    let (t, _clock) = on_manual_clock(plan).await;
    let send = |n| TestSim::send(t.amc(reqwest::Method::POST, "").json(&body(SQL, n)));
    assert_eq!(send(4).await.0, 200, "another window");
    let (code, err) = send(5).await;
    assert_eq!(code, 503);
    assert_eq!(err["code"], "503");
    assert_eq!(send(5).await.0, 200, "the retry goes through");
    let stats = t.admin_get("stats").await;
    assert_eq!(stats["creates"], 2);
    assert_eq!(stats["faults_injected"]["server_error"], 1);
}

#[tokio::test]
async fn get_rules_match_the_execution_they_ask_about() {
    let plan = json!({"rules": [{"route": "get", "probability": 1.0, "times": 2,
        "match": {"sql_contains": "/* flaky_status */"}, "fault": {"kind": "gateway_timeout"}}]});
    let (t, _clock) = on_manual_clock(plan).await;
    let flaky = t
        .create_body(body(&format!("{SQL} /* flaky_status */"), 0))
        .await;
    let calm = t.create_body(body(SQL, 0)).await;
    let get = |id: &str| TestSim::send(t.amc(reqwest::Method::GET, &format!("/{id}")));
    assert_eq!(get(&calm).await.0, 200);
    assert_eq!(get(&flaky).await.0, 504);
    assert_eq!(get(&flaky).await.0, 504);
    assert_eq!(get(&flaky).await.0, 200);
}

#[tokio::test]
async fn limits_are_checked_when_the_plan_is_set() {
    let (t, _clock) = on_manual_clock(json!({"rules": []})).await;
    for bad in [
        json!([{"route": "run", "probability": 1.0, "times": 0, "fault": {"kind": "failed"}}]),
        json!([{"route": "list", "probability": 1.0, "match": {"sql_contains": "x"},
                "fault": {"kind": "gateway_timeout"}}]),
        json!([{"route": "run", "probability": 1.0, "match": {"window": "x"},
                "fault": {"kind": "failed"}}]),
    ] {
        let resp = t.admin_post("faults", bad.clone()).await;
        assert_eq!(resp.status(), 400, "{bad}");
    }
    // From the environment too.
    let cfg = amc_sim::SimConfig::from_lookup(|k| {
        (k == "AMP_SIM_FAULTS").then(|| {
            json!([{"route": "run", "probability": 1.0, "times": 1,
                    "match": {"sql_contains": "/* fail_me */"}, "fault": {"kind": "failed"}}])
            .to_string()
        })
    })
    .expect("valid");
    let (fault, scope) = cfg.faults.rules[0].fault.parts();
    assert_eq!(fault.kind(), "failed");
    assert_eq!(scope.and_then(|s| s.times), Some(1));
}
