//! Pause, cancel and retries: pause stops new windows (running ones finish) and resume
//! continues; cancel cancels queued and running windows at AMC and makes no further AMC
//! create call; injected failures of the first attempt of windows 3, 17 and 40 are retried
//! (two attempts on exactly those); a window whose every attempt fails leaves the
//! collection `failed` with that window listed, and retry-failed runs only that window.

use crate::{collection, fast_env, rows, sim_runs, user, wait_ended, wait_for, windows};
use serde_json::{Value, json};
use std::time::Duration;
use testkit::{System, SystemOptions};

fn sim(run: Duration) -> amc_sim::SimConfig {
    amc_sim::SimConfig {
        addr: "127.0.0.1:0".parse().unwrap(),
        run_duration: run,
        ..amc_sim::SimConfig::default()
    }
}

async fn system(run: Duration) -> System {
    System::start(SystemOptions {
        sim: sim(run),
        env: fast_env(),
        ..SystemOptions::default()
    })
    .await
    .expect("system")
}

/// A run-level failure of windows starting at `starts`, `times` attempts each (None: all).
fn fail_windows(starts: &[String], times: Option<u32>) -> Value {
    let rules: Vec<Value> = starts
        .iter()
        .map(|s| {
            let mut r = json!({"route": "run", "probability": 1.0,
                               "match": {"time_window_start": s},
                               "fault": {"kind": "failed", "reason": "compile"}});
            if let Some(t) = times {
                r["times"] = json!(t);
            }
            r
        })
        .collect();
    json!({"rules": rules})
}

#[tokio::test]
async fn failed_first_attempts_are_retried_and_a_window_failing_for_good_can_be_retried() {
    let sys = system(Duration::from_millis(100)).await;
    let (c, setup) = user(&sys, "retries@example.com", "amcretry01", 10).await;
    // Windows 3, 17 and 40 of a year of weeks fail their first attempt.
    let (s, dry) = c
        .post(
            "/collections?dry_run=true",
            json!({"workflow_id": setup.workflow_id, "parameters": {"tag": "retries"}, "max_concurrency": 4}),
        )
        .await;
    assert_eq!(s, 200, "{dry}");
    let starts: Vec<String> = dry["windows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["start"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(starts.len(), 52);
    let (s, none) = c.get("/collections").await;
    assert_eq!(
        (s, none["items"].as_array().unwrap().len()),
        (200, 0),
        "a dry run creates nothing"
    );
    let failing: Vec<String> = [3, 17, 40].iter().map(|i| starts[*i].clone()).collect();
    sys.sim_admin("faults", fail_windows(&failing, Some(1)))
        .await
        .expect("faults");
    let b = collection(
        &c,
        &setup.workflow_id,
        "retries",
        json!({"max_concurrency": 4}),
    )
    .await;
    let id = b["id"].as_str().unwrap().to_string();
    let done = wait_ended(&c, &id, Duration::from_secs(150)).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let w = windows(&c, &id, 100).await;
    for (i, x) in w.iter().enumerate() {
        let want = if [3, 17, 40].contains(&i) { 2 } else { 1 };
        assert_eq!(x["attempts"], want, "window {i}: {x}");
        assert_eq!(x["status"], "succeeded");
    }

    // A window that fails every attempt: the collection fails, listing it.
    let always = vec![starts[5].clone()];
    sys.sim_admin("faults", fail_windows(&always, None))
        .await
        .expect("faults");
    let b = collection(
        &c,
        &setup.workflow_id,
        "always",
        json!({"max_concurrency": 4, "max_attempts": 2}),
    )
    .await;
    let id = b["id"].as_str().unwrap().to_string();
    let done = wait_ended(&c, &id, Duration::from_secs(150)).await;
    assert_eq!(done["status"], "failed", "{done}");
    assert_eq!(done["counts"]["failed"], 1, "{done}");
    assert_eq!(done["counts"]["succeeded"], 51, "{done}");
    let w = windows(&c, &id, 100).await;
    let failed: Vec<&Value> = w.iter().filter(|x| x["status"] == "failed").collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["index"], 5);
    assert_eq!(failed[0]["attempts"], 2);
    assert!(failed[0]["error"]["message"].is_string(), "{}", failed[0]);
    let db = sys.db.connect().await.expect("db");
    let events = rows(
        &db,
        &format!("SELECT 1 AS one FROM events WHERE subject_id = '{id}' AND event_type = 'collection.failed'"),
    )
    .await;
    assert_eq!(events.len(), 1);
    let before = rows(
        &db,
        &format!("SELECT count(*) AS n FROM executions WHERE collection_id = '{id}'"),
    )
    .await;
    // retry-failed runs only that window again.
    sys.sim_admin("faults", json!({"rules": []}))
        .await
        .expect("faults");
    let (s, r) = c
        .post(&format!("/collections/{id}/retry-failed"), json!({}))
        .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["status"], "running");
    let done = wait_ended(&c, &id, Duration::from_secs(60)).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let after = rows(
        &db,
        &format!("SELECT count(*) AS n FROM executions WHERE collection_id = '{id}'"),
    )
    .await;
    assert_eq!(
        after[0]["n"].as_i64().unwrap(),
        before[0]["n"].as_i64().unwrap() + 1,
        "one more run: the failed window's"
    );
    let w = windows(&c, &id, 100).await;
    assert_eq!(w[5]["status"], "succeeded");
    assert_eq!(w[5]["attempts"], 1, "a fresh budget");
    // Nothing left to retry.
    let (s, _) = c
        .post(&format!("/collections/{id}/retry-failed"), json!({}))
        .await;
    assert_eq!(s, 409);
    sys.cleanup().await;
}

#[tokio::test]
async fn pause_lets_running_windows_finish_and_resume_continues() {
    let sys = system(Duration::from_millis(1500)).await;
    let (c, setup) = user(&sys, "pause@example.com", "amcpause01", 10).await;
    let b = collection(
        &c,
        &setup.workflow_id,
        "pause",
        json!({"granularity": "day", "start": "2026-04-01", "end": "2026-04-09", "max_concurrency": 2}),
    )
    .await;
    let id = b["id"].as_str().unwrap().to_string();
    let running = wait_for(&c, &id, Duration::from_secs(20), |b| {
        b["counts"]["running"] == 2
    })
    .await;
    assert_eq!(running["counts"]["running"], 2, "{running}");
    let (s, p) = c.post(&format!("/collections/{id}/pause"), json!({})).await;
    assert_eq!((s, p["status"].as_str()), (200, Some("paused")), "{p}");
    // The two running windows finish; no other starts.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (_, now) = c.get(&format!("/collections/{id}")).await;
    assert_eq!(now["status"], "paused");
    assert_eq!(now["counts"]["succeeded"], 2, "{now}");
    assert_eq!(now["counts"]["running"], 0, "{now}");
    assert_eq!(
        sim_runs(&sys, "amcpause01").await.len(),
        2,
        "no window started while paused"
    );
    let (s, r) = c
        .post(&format!("/collections/{id}/resume"), json!({}))
        .await;
    assert_eq!((s, r["status"].as_str()), (200, Some("running")), "{r}");
    let done = wait_ended(&c, &id, Duration::from_secs(60)).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["counts"]["succeeded"], 8);
    // Ended: pause and resume are refused.
    let (s, _) = c.post(&format!("/collections/{id}/pause"), json!({})).await;
    assert_eq!(s, 409);
    sys.cleanup().await;
}

#[tokio::test]
async fn cancel_stops_windows_at_amc_and_creates_nothing_more() {
    let sys = system(Duration::from_secs(60)).await;
    let (c, setup) = user(&sys, "cancel@example.com", "amccancel01", 10).await;
    let b = collection(
        &c,
        &setup.workflow_id,
        "cancel",
        json!({"granularity": "day", "start": "2026-05-01", "end": "2026-05-13", "max_concurrency": 3}),
    )
    .await;
    let id = b["id"].as_str().unwrap().to_string();
    let running = wait_for(&c, &id, Duration::from_secs(20), |b| {
        b["counts"]["running"] == 3
    })
    .await;
    assert_eq!(running["counts"]["running"], 3, "{running}");
    // Wait until AMC has all three.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while sim_runs(&sys, "amccancel01").await.len() < 3 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let creates_before = sys.sim_stats().await.unwrap()["creates"].as_u64().unwrap();
    let asked = std::time::Instant::now();
    let (s, r) = c
        .post(&format!("/collections/{id}/cancel"), json!({}))
        .await;
    assert_eq!((s, r["status"].as_str()), (200, Some("cancelled")), "{r}");
    let done = wait_ended(&c, &id, Duration::from_secs(10)).await;
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "ended within 10 s"
    );
    assert_eq!(done["status"], "cancelled", "{done}");
    assert_eq!(done["counts"]["cancelled"], 12, "{done}");
    let at_amc = sim_runs(&sys, "amccancel01").await;
    assert_eq!(at_amc.len(), 3);
    assert!(
        at_amc.iter().all(|r| r["status"] == "CANCELLED"),
        "{at_amc:?}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        sys.sim_stats().await.unwrap()["creates"].as_u64().unwrap(),
        creates_before,
        "no AMC create after the cancel"
    );
    let db = sys.db.connect().await.expect("db");
    let events = rows(
        &db,
        &format!("SELECT payload FROM events WHERE subject_id = '{id}' AND event_type = 'collection.cancelled'"),
    )
    .await;
    assert_eq!(events.len(), 1);
    let (s, _) = c
        .post(&format!("/collections/{id}/cancel"), json!({}))
        .await;
    assert_eq!(s, 409, "an ended collection");
    sys.cleanup().await;
}
