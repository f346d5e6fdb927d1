//! Create, status clock, concurrency, list and cancel.

use std::time::Duration;

use futures::future::join_all;
use serde_json::{Value, json};

use crate::TestSim;

#[tokio::test]
async fn create_then_succeeds_after_run_duration() {
    let t = TestSim::start(|_| {}).await;
    let sql = "SELECT campaign, SUM(impressions) FROM dsp_impressions GROUP BY campaign";
    let created = t.create(sql).await;
    assert_eq!(created["status"], "PENDING");
    let id = created["workflowExecutionId"]
        .as_str()
        .expect("id")
        .to_owned();
    assert!(uuid::Uuid::parse_str(&id).is_ok());
    assert!(
        created["workflowId"]
            .as_str()
            .expect("wf")
            .starts_with("transient_")
    );
    assert_eq!(created["timeWindowStart"], "2024-01-01T05:00:00Z");
    assert_eq!(created["timeWindowEnd"], "2024-01-08T05:00:00Z");
    assert_eq!(created["timeWindowStartOriginal"], "2024-01-01T00:00:00");
    assert_eq!(created["timeWindowEndOriginal"], "2024-01-08T00:00:00");
    assert_eq!(created["timeWindowTimeZoneOriginal"], "America/New_York");
    assert_eq!(created["workflowExecutionTimeoutSeconds"], 21600);
    assert_eq!(created["parameterValues"], json!({}));
    assert!(created["createTime"].as_str().expect("ct").ends_with('Z'));
    assert!(created.get("sqlQuery").is_none());

    let running = t.get(&id).await;
    assert_eq!(running["status"], "RUNNING");
    let done = t.wait_for(&id, "SUCCEEDED", Duration::from_secs(3)).await;
    assert!(done.get("sqlQuery").is_none());
    let with_sql: Value = t
        .amc(reqwest::Method::GET, &format!("/{id}?includeWorkflow=true"))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(with_sql["sqlQuery"], sql);

    let missing = uuid::Uuid::new_v4();
    let resp = t
        .amc(reqwest::Method::GET, &format!("/{missing}"))
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status(), 400);
    assert_eq!(
        resp.json::<Value>().await.expect("json"),
        json!({"code":"400","details":format!("Workflow execution with ID {missing} does not exist.")})
    );
}

/// Creates 25 runs at once and checks, while they drain, that at most `max` run at a time.
async fn burst(t: &TestSim, max: usize) {
    let created =
        join_all((0..25).map(|i| async move { t.create(&format!("SELECT {i}")).await })).await;
    assert_eq!(created.len(), 25);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let list: Value = t
            .amc(reqwest::Method::GET, "?limit=100")
            .send()
            .await
            .expect("list")
            .json()
            .await
            .expect("json");
        let execs = list["executions"].as_array().expect("executions");
        assert_eq!(execs.len(), 25);
        let count = |s: &str| execs.iter().filter(|e| e["status"] == s).count();
        assert!(count("RUNNING") <= max, "{} running", count("RUNNING"));
        if count("SUCCEEDED") == 25 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "not drained");
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let stats = t.admin_get("stats").await;
    assert_eq!(stats["peak_active"][&t.instance], 25);
    assert_eq!(stats["creates"], 25);
}

#[tokio::test]
async fn at_most_ten_running_per_instance() {
    let t = TestSim::start(|_| {}).await;
    burst(&t, 10).await;
}

#[tokio::test]
async fn lower_max_running_still_drains() {
    let t = TestSim::start(|_| {}).await;
    let ok = t
        .admin_post("config", json!({"max_running": 3, "run_duration_ms": 100}))
        .await;
    assert_eq!(ok.status(), 200);
    burst(&t, 3).await;
}

#[tokio::test]
async fn list_filters_and_paginates() {
    let t = TestSim::start(|c| c.run_duration = Duration::from_secs(60)).await;
    let before = chrono::Utc::now() - chrono::Duration::seconds(2);
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(t.create(&format!("SELECT {i}")).await["workflowExecutionId"].clone());
    }
    let min = before.format("%Y-%m-%dT%H:%M:%S");
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut path = format!("?minCreationTime={min}&includeWorkflow=true&limit=2");
        if let Some(tok) = &token {
            path.push_str(&format!("&nextToken={tok}"));
        }
        let page: Value = t
            .amc(reqwest::Method::GET, &path)
            .send()
            .await
            .expect("list")
            .json()
            .await
            .expect("json");
        for e in page["executions"].as_array().expect("executions") {
            assert!(e["sqlQuery"].as_str().expect("sql").starts_with("SELECT "));
            seen.push(e["workflowExecutionId"].clone());
        }
        match page["nextToken"].as_str() {
            Some(tok) => token = Some(tok.to_owned()),
            None => break,
        }
    }
    seen.reverse();
    assert_eq!(seen, ids);

    let future = (chrono::Utc::now() + chrono::Duration::hours(1)).format("%Y-%m-%dT%H:%M:%S");
    let page: Value = t
        .amc(reqwest::Method::GET, &format!("?minCreationTime={future}"))
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert_eq!(page["executions"], json!([]));
    assert_eq!(page["nextToken"], Value::Null);
}

#[tokio::test]
async fn cancel_by_put_and_delete() {
    let t = TestSim::start(|c| {
        c.run_duration = Duration::from_secs(60);
        c.max_running = 1;
    })
    .await;
    let a = t.create("SELECT 1").await["workflowExecutionId"]
        .as_str()
        .expect("id")
        .to_owned();
    let b = t.create("SELECT 2").await["workflowExecutionId"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_eq!(t.get(&a).await["status"], "RUNNING");
    assert_eq!(t.get(&b).await["status"], "PENDING");

    let resp = t
        .amc(reqwest::Method::PUT, &format!("/{a}"))
        .json(&json!({"status":"CANCELLED"}))
        .send()
        .await
        .expect("put");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.expect("json"), json!({}));
    assert_eq!(t.get(&a).await["status"], "CANCELLED");
    assert_eq!(
        t.get(&b).await["status"],
        "RUNNING",
        "cancel frees the slot"
    );

    let resp = t
        .amc(reqwest::Method::DELETE, &format!("/{b}"))
        .send()
        .await
        .expect("delete");
    assert_eq!(resp.status(), 200);
    let again = t
        .amc(reqwest::Method::DELETE, &format!("/{a}"))
        .send()
        .await
        .expect("delete");
    assert_eq!(again.status(), 400);

    let listed: Value = t
        .amc(reqwest::Method::GET, "")
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert_eq!(listed["executions"], json!([]));
    let listed: Value = t
        .amc(reqwest::Method::GET, "?includeCancelled=true")
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert_eq!(listed["executions"].as_array().expect("arr").len(), 2);
    assert_eq!(t.admin_get("stats").await["cancels"], 2);
}

#[tokio::test]
async fn manual_clock_drives_transitions_exactly() {
    let clock = std::sync::Arc::new(amc_sim::ManualClock::new(chrono::Utc::now()));
    let t = TestSim::start_with_clock(
        |c| {
            c.run_duration = Duration::from_secs(3600);
            c.max_running = 1;
            c.token_ttl = Duration::from_secs(3 * 86_400);
        },
        clock.clone(),
    )
    .await;
    let a = t.create("SELECT a").await["workflowExecutionId"]
        .as_str()
        .expect("id")
        .to_owned();
    let b = t.create("SELECT b").await["workflowExecutionId"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_eq!(t.get(&a).await["status"], "RUNNING");
    assert_eq!(t.get(&b).await["status"], "PENDING");
    clock.advance(Duration::from_secs(3600));
    assert_eq!(t.get(&a).await["status"], "SUCCEEDED");
    assert_eq!(t.get(&b).await["status"], "RUNNING");
    clock.advance(Duration::from_secs(3600 * 24));
    let done = t.get(&b).await;
    assert_eq!(done["status"], "SUCCEEDED");
    assert_eq!(
        done["lastUpdatedTime"],
        t.get(&a).await["createTime"]
            .as_str()
            .map(|c| {
                let created = chrono::DateTime::parse_from_rfc3339(c).expect("ts");
                (created + chrono::Duration::hours(2))
                    .to_utc()
                    .format("%Y-%m-%dT%H:%M:%SZ")
                    .to_string()
            })
            .expect("createTime"),
        "b ended exactly two run durations after creation"
    );
    // Tokens expire on the injected clock too.
    clock.advance(Duration::from_secs(2 * 86_400));
    let resp = t.amc(reqwest::Method::GET, "").send().await.expect("list");
    assert_eq!(resp.status(), 401);
}
