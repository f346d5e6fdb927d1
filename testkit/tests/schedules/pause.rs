//! Auto-pause: three FAILED runs in a row (AMC fails every run) pause the schedule with its
//! reason and record `schedule.paused`; resuming resets the count. A run cancelled by hand
//! does not pause a schedule, even one that pauses after a single failure.

use crate::{rows, schedule, user};
use amc_sim::SimConfig;
use serde_json::json;
use std::time::Duration;
use testkit::{System, SystemOptions, wait_until};

#[tokio::test]
async fn three_failed_runs_pause_and_a_cancelled_one_does_not() {
    let sys = System::start(SystemOptions {
        sim: SimConfig {
            addr: "127.0.0.1:0".parse().unwrap(),
            run_duration: Duration::from_millis(300),
            ..SimConfig::default()
        },
        ..SystemOptions::default()
    })
    .await
    .expect("system");
    let (c, setup) = user(&sys, "pause@example.com").await;
    sys.sim_admin("faults", json!({"rules": [{"route": "run", "probability": 1.0, "fault": {"kind": "failed", "reason": "compile"}}]}))
        .await
        .expect("faults");
    let b = schedule(
        &c,
        &setup.workflow_id,
        "failing",
        "* * * * * *",
        json!({"pause_after_failures": 3}),
    )
    .await;
    let id = b["id"].as_str().unwrap().to_string();
    let paused = wait_until(Duration::from_secs(30), || {
        let c = c.clone();
        let path = format!("/schedules/{id}");
        async move { c.get(&path).await.1["enabled"] == false }
    })
    .await;
    assert!(paused, "the schedule was not paused");
    let (_, s) = c.get(&format!("/schedules/{id}")).await;
    assert_eq!(s["consecutive_failures"], 3, "{s}");
    assert_eq!(
        s["paused_reason"], "paused after 3 consecutive failed runs",
        "{s}"
    );
    assert!(s["next_run_at"].is_null(), "{s}");
    let db = sys.db.connect().await.expect("db");
    let failed = rows(
        &db,
        &format!("SELECT status FROM executions WHERE schedule_id = '{id}'"),
    )
    .await;
    assert_eq!(failed.len(), 3, "runs: {failed:?}");
    assert!(failed.iter().all(|r| r["status"] == "failed"), "{failed:?}");
    let events = rows(&db, &format!("SELECT payload FROM events WHERE event_type = 'schedule.paused' AND subject_id = '{id}'")).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["payload"]["enabled"], false);
    assert_eq!(
        events[0]["payload"]["paused_reason"],
        "paused after 3 consecutive failed runs"
    );
    let (_, m) = c.get(&format!("/schedules/{id}/metrics")).await;
    assert_eq!(
        (
            m["runs"].as_i64(),
            m["failed"].as_i64(),
            m["success_rate"].as_f64()
        ),
        (Some(3), Some(3), Some(0.0)),
        "{m}"
    );
    // Resuming resets the count and the reason.
    let (st, r) = c.post(&format!("/schedules/{id}/resume"), json!({})).await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(
        (r["enabled"].as_bool(), r["consecutive_failures"].as_i64()),
        (Some(true), Some(0)),
        "{r}"
    );
    assert!(
        r["paused_reason"].is_null() && !r["next_run_at"].is_null(),
        "{r}"
    );
    let (_, _) = c.post(&format!("/schedules/{id}/pause"), json!({})).await;

    // A run cancelled by hand never counts as a failure.
    sys.sim_admin("faults", json!({"rules": []}))
        .await
        .expect("faults off");
    sys.sim_admin("config", json!({"run_duration_ms": 30000}))
        .await
        .expect("slow runs");
    let b = schedule(
        &c,
        &setup.workflow_id,
        "cancelled",
        "* * * * * *",
        json!({"pause_after_failures": 1}),
    )
    .await;
    let other = b["id"].as_str().unwrap().to_string();
    let q = format!(
        "SELECT id::text AS id FROM executions WHERE schedule_id = '{other}' AND status = 'running' LIMIT 1"
    );
    let mut running = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while running.is_none() && tokio::time::Instant::now() < deadline {
        running = rows(&db, &q)
            .await
            .first()
            .and_then(|r| r["id"].as_str().map(str::to_string));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let run = running.expect("a run of the second schedule reached AMC");
    let (st, body) = c
        .post(&format!("/executions/{run}/cancel"), json!({}))
        .await;
    assert_eq!(st, 200, "{body}");
    let ended = c
        .wait_terminal(std::slice::from_ref(&run), Duration::from_secs(20))
        .await;
    assert_eq!(ended[0]["status"], "cancelled", "{}", ended[0]);
    let (_, s) = c.get(&format!("/schedules/{other}")).await;
    assert_eq!(
        (s["enabled"].as_bool(), s["consecutive_failures"].as_i64()),
        (Some(true), Some(0)),
        "{s}"
    );
    assert!(s["paused_reason"].is_null(), "{s}");
    sys.cleanup().await;
}
