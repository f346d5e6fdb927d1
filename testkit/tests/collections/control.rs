//! Pause, cancel and retries: pause stops new windows (running ones finish) and resume
//! continues, with an estimated completion in the future; a window's run waiting for the
//! instance's reserve (or its paused collection) says so; cancel cancels queued and running
//! windows at AMC and makes no further AMC create call, none for the queued window;
//! injected failures of the first attempt of windows 3, 17 and 40 are retried (two
//! attempts, each a run of its own, on exactly those); a window whose every attempt fails
//! leaves the collection `failed` with that window listed (in its body and its event), and
//! retry-failed runs only that window.

use crate::{
    collection, counts, fast_env, only_event, rows, sim_runs, user, wait_ended, wait_for, windows,
};
use serde_json::{Value, json};
use std::time::Duration;
use testkit::{Client, System, SystemOptions};

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
    // Each attempt is a run of its own, linked to its window: two runs for windows 3, 17
    // and 40 (a failed one, then a succeeded one), one for every other window.
    let runs = c
        .list_all(&format!("/executions?collection_id={id}&limit=500"))
        .await;
    assert_eq!(runs.len(), 55, "52 windows, 3 of them twice");
    for (i, x) in w.iter().enumerate() {
        let want = if [3, 17, 40].contains(&i) { 2 } else { 1 };
        assert_eq!(x["attempts"], want, "window {i}: {x}");
        assert_eq!(x["status"], "succeeded");
        let ids = x["execution_ids"].as_array().unwrap();
        assert_eq!(ids.len(), want, "window {i}: {x}");
        assert_eq!(ids.last(), Some(&x["execution_id"]), "window {i}: {x}");
        let mut of_window: Vec<&Value> = runs
            .iter()
            .filter(|r| r["collection_window"] == i)
            .collect();
        of_window.sort_by_key(|r| r["created_at"].as_str().unwrap().to_string());
        let statuses: Vec<&str> = of_window
            .iter()
            .map(|r| r["status"].as_str().unwrap())
            .collect();
        let want_statuses = if want == 2 {
            vec!["failed", "succeeded"]
        } else {
            vec!["succeeded"]
        };
        assert_eq!(statuses, want_statuses, "runs of window {i}");
        let run_ids: Vec<&Value> = of_window.iter().map(|r| &r["id"]).collect();
        assert_eq!(run_ids, ids.iter().collect::<Vec<_>>(), "window {i}");
        assert!(
            of_window
                .iter()
                .all(|r| r["time_window"]["start"] == x["start"]),
            "window {i}"
        );
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
    assert_eq!(failed[0]["execution_ids"].as_array().unwrap().len(), 2);
    assert!(failed[0]["error"]["message"].is_string(), "{}", failed[0]);
    // The collection lists its failing window: where, its last error, its attempts; so
    // does the windows filter.
    assert_eq!(done["failed_windows"], json!([failed[0]]), "{done}");
    assert_eq!(done["failed_windows"][0]["start"], starts[5], "{done}");
    assert_eq!(
        done["failed_windows"][0]["error"]["code"], "amc_failed",
        "{done}"
    );
    let (s, only) = c
        .get(&format!("/collections/{id}/windows?status=failed"))
        .await;
    assert_eq!(s, 200, "{only}");
    assert_eq!(only["items"], json!([failed[0]]), "{only}");
    assert_eq!(only["next_cursor"], Value::Null);
    let db = sys.db.connect().await.expect("db");
    let payload = only_event(&db, &id, "collection.failed").await;
    assert_eq!(
        (&payload["status"], &payload["total"]),
        (&json!("failed"), &json!(52)),
        "{payload}"
    );
    assert_eq!(payload["counts"], counts(0, 0, 51, 1, 0), "{payload}");
    assert_eq!(payload["failed_windows"], json!([failed[0]]), "{payload}");
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
    assert_eq!(
        w[5]["execution_ids"].as_array().unwrap().len(),
        3,
        "its two failed runs and the new one"
    );
    assert_eq!(done["failed_windows"], json!([]), "{done}");
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
    assert!(
        running["estimated_completion_at"].is_null(),
        "no window has succeeded yet: {running}"
    );
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
    // Two windows have succeeded: the estimate is from their runtimes, in the future.
    let eta = r["estimated_completion_at"]
        .as_str()
        .unwrap_or_else(|| panic!("an estimate while running: {r}"));
    let eta = chrono::DateTime::parse_from_rfc3339(eta).expect("a time");
    assert!(eta > chrono::Utc::now(), "{eta} is in the past: {r}");
    let done = wait_ended(&c, &id, Duration::from_secs(60)).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["counts"]["succeeded"], 8);
    // Ended: pause and resume are refused.
    let (s, _) = c.post(&format!("/collections/{id}/pause"), json!({})).await;
    assert_eq!(s, 409);
    sys.cleanup().await;
}

/// Why a queued run waits, as `GET /executions/{id}` says.
async fn waiting_reason(c: &Client, run: &str) -> Value {
    let (s, e) = c.get(&format!("/executions/{run}")).await;
    assert_eq!((s, e["status"].as_str()), (200, Some("queued")), "{e}");
    e["waiting_reason"].clone()
}

#[tokio::test]
async fn cancel_stops_windows_at_amc_and_creates_nothing_more() {
    let sys = system(Duration::from_secs(60)).await;
    // Cap 3 and the default reserve of 2: one window runs; the next one's run waits.
    let (c, setup) = user(&sys, "cancel@example.com", "amccancel01", 3).await;
    let b = collection(
        &c,
        &setup.workflow_id,
        "cancel",
        json!({"granularity": "day", "start": "2026-05-01", "end": "2026-05-13", "max_concurrency": 2}),
    )
    .await;
    let id = b["id"].as_str().unwrap().to_string();
    let running = wait_for(&c, &id, Duration::from_secs(20), |b| {
        b["counts"]["running"] == 1
    })
    .await;
    assert_eq!(running["counts"]["running"], 1, "{running}");
    // Wait until AMC has it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while sim_runs(&sys, "amccancel01").await.is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let w = windows(&c, &id, 100).await;
    assert_eq!(w[0]["status"], "running", "{:?}", w[0]);
    let (first, second) = (&w[0], &w[1]);
    assert_eq!(second["status"], "queued", "{second}");
    let queued_run = second["execution_id"]
        .as_str()
        .expect("its run")
        .to_string();
    // It waits for the reserve; paused, for its collection; resumed, for the reserve again.
    assert_eq!(waiting_reason(&c, &queued_run).await, "collection_reserve");
    let (s, p) = c.post(&format!("/collections/{id}/pause"), json!({})).await;
    assert_eq!((s, p["status"].as_str()), (200, Some("paused")), "{p}");
    assert_eq!(waiting_reason(&c, &queued_run).await, "collection_paused");
    let (s, r) = c
        .post(&format!("/collections/{id}/resume"), json!({}))
        .await;
    assert_eq!((s, r["status"].as_str()), (200, Some("running")), "{r}");
    assert_eq!(waiting_reason(&c, &queued_run).await, "collection_reserve");

    let creates_before = sys.sim_stats().await.unwrap()["creates"].as_u64().unwrap();
    assert_eq!(creates_before, 1, "only the running window reached AMC");
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
    // The running window was cancelled at AMC; the queued one never reached it.
    let at_amc = sim_runs(&sys, "amccancel01").await;
    assert_eq!(at_amc.len(), 1, "{at_amc:?}");
    assert_eq!(at_amc[0]["status"], "CANCELLED", "{at_amc:?}");
    assert_eq!(at_amc[0]["time_window_start"], first["start"], "{at_amc:?}");
    let (_, e) = c.get(&format!("/executions/{queued_run}")).await;
    assert_eq!(e["status"], "cancelled", "{e}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        sys.sim_stats().await.unwrap()["creates"].as_u64().unwrap(),
        creates_before,
        "no AMC create after the cancel"
    );
    assert!(
        sim_runs(&sys, "amccancel01")
            .await
            .iter()
            .all(|r| r["time_window_start"] != second["start"]),
        "no AMC create for the queued window"
    );
    let db = sys.db.connect().await.expect("db");
    let payload = only_event(&db, &id, "collection.cancelled").await;
    assert_eq!(
        (&payload["status"], &payload["total"]),
        (&json!("cancelled"), &json!(12)),
        "{payload}"
    );
    assert_eq!(payload["counts"], counts(0, 0, 0, 0, 12), "{payload}");
    assert_eq!(payload["failed_windows"], json!([]), "{payload}");
    let (s, _) = c
        .post(&format!("/collections/{id}/cancel"), json!({}))
        .await;
    assert_eq!(s, 409, "an ended collection");
    sys.cleanup().await;
}
