//! Held create answers and the admin counters.

use std::time::Duration;

use serde_json::{Value, json};

use crate::{TestSim, window_body};

#[tokio::test]
async fn held_create_exists_before_its_answer() {
    let t = std::sync::Arc::new(TestSim::start(|c| c.run_duration = Duration::from_secs(60)).await);
    assert_eq!(
        t.admin_post("hold-next-create", json!({})).await.status(),
        200
    );
    let bg = std::sync::Arc::clone(&t);
    let pending = tokio::spawn(async move {
        bg.amc(reqwest::Method::POST, "")
            .json(&window_body("SELECT held"))
            .send()
            .await
            .expect("create")
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while t.admin_get("held").await["held"] != 1 {
        assert!(tokio::time::Instant::now() < deadline, "never held");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let listed: Value = t
        .amc(reqwest::Method::GET, "?includeWorkflow=true")
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    let execs = listed["executions"].as_array().expect("arr");
    assert_eq!(execs.len(), 1);
    assert_eq!(execs[0]["sqlQuery"], "SELECT held");
    let stats = t.admin_get("stats").await;
    assert_eq!(stats["creates"], 1);
    let run = &stats["runs"][0];
    assert_eq!(run["instance_id"], t.instance.as_str());
    assert_eq!(run["time_window_start"], "2024-01-01T00:00:00");
    assert_eq!(run["time_window_end"], "2024-01-08T00:00:00");
    assert_eq!(run["time_zone"], "America/New_York");
    assert_eq!(run["status"], "RUNNING");
    assert!(!pending.is_finished());

    // Only the next create is held.
    t.create("SELECT free").await;
    assert_eq!(t.admin_post("release", json!({})).await.status(), 200);
    let resp = pending.await.expect("join");
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["workflowExecutionId"], execs[0]["workflowExecutionId"]);
    assert_eq!(t.admin_get("held").await["held"], 0);
}

/// `stats` lists the saved workflows each instance holds (id and SQL size) and counts the
/// creates, updates and deletes AMC answered 200; a refused create (the id exists) or a
/// delete of an unknown id counts nothing.
#[tokio::test]
async fn stats_list_saved_workflows_and_count_their_changes() {
    use reqwest::Method;
    let t = TestSim::start(|_| {}).await;
    let def = |sql: &str| json!({"workflowId": "amp_stats", "sqlQuery": sql});
    let post = || t.reporting(Method::POST, "/workflows");
    assert_eq!(TestSim::send(post().json(&def("SELECT 1"))).await.0, 200);
    assert_eq!(TestSim::send(post().json(&def("SELECT 1"))).await.0, 400);
    let put = t.reporting(Method::PUT, "/workflows/amp_stats");
    assert_eq!(TestSim::send(put.json(&def("SELECT 22"))).await.0, 200);
    let stats = t.admin_get("stats").await;
    assert_eq!(
        stats["workflows"],
        json!([{"instance_id": t.instance, "workflow_id": "amp_stats", "sql_bytes": 9}])
    );
    assert_eq!(
        (&stats["workflow_creates"], &stats["workflow_updates"]),
        (&json!(1), &json!(1))
    );
    for expected in [200, 400] {
        let del = t.reporting(Method::DELETE, "/workflows/amp_stats");
        assert_eq!(TestSim::send(del).await.0, expected);
    }
    let stats = t.admin_get("stats").await;
    assert_eq!(stats["workflows"], json!([]));
    assert_eq!(stats["workflow_deletes"], 1);
}
