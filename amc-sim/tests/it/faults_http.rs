//! Injected HTTP faults: the admin plan API, 429/5xx/504, slow answers, token expiry, lost and
//! held create answers; every draw reproducible from the seed.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::{TestSim, window_body};

/// A plan of one rule.
fn one(route: &str, probability: f64, fault: Value) -> Value {
    json!({"seed": 11, "rules": [{"route": route, "probability": probability, "fault": fault}]})
}

async fn set_faults(t: &TestSim, plan: Value) {
    let resp = t.admin_post("faults", plan).await;
    assert_eq!(resp.status(), 200, "{:?}", resp.text().await);
}

async fn list_status(t: &TestSim) -> u16 {
    t.amc(reqwest::Method::GET, "")
        .send()
        .await
        .expect("list")
        .status()
        .as_u16()
}

#[tokio::test]
async fn the_plan_is_set_read_and_cleared_at_run_time() {
    let t = TestSim::start(|_| {}).await;
    let empty = t.admin_get("faults").await;
    assert_eq!(empty["rules"], json!([]));
    let plan = one("get", 0.5, json!({"kind": "server_error", "status": 503}));
    set_faults(&t, plan.clone()).await;
    let read = t.admin_get("faults").await;
    assert_eq!(read["seed"], 11);
    assert_eq!(read["rules"], plan["rules"]);
    let bad = t
        .admin_post("faults", one("get", 0.5, json!({"kind": "failed"})))
        .await;
    assert_eq!(bad.status(), 400);
    assert_eq!(t.admin_get("faults").await["rules"], plan["rules"]);
    let cleared: Value = t
        .http
        .delete(format!("{}/sim/admin/faults", t.sim.base_url()))
        .send()
        .await
        .expect("delete")
        .json()
        .await
        .expect("json");
    assert_eq!(cleared["rules"], json!([]));
    assert_eq!(list_status(&t).await, 200);
}

/// The statuses of 30 list calls under a 50% mix of 429, 502 and 504.
async fn statuses(seed: u64, instance: &str) -> Vec<u16> {
    let mut t = TestSim::start(|_| {}).await;
    t.instance = instance.to_owned();
    set_faults(
        &t,
        json!({"seed": seed, "rules": [
            {"route": "list", "probability": 0.2, "fault": {"kind": "too_many_requests", "retry_after_secs": 3}},
            {"route": "list", "probability": 0.2, "fault": {"kind": "server_error", "status": 502}},
            {"route": "list", "probability": 0.2, "fault": {"kind": "gateway_timeout"}},
        ]}),
    )
    .await;
    let mut out = Vec::new();
    for _ in 0..30 {
        let resp = t.amc(reqwest::Method::GET, "").send().await.expect("list");
        let status = resp.status().as_u16();
        match status {
            429 => assert_eq!(resp.headers()["Retry-After"], "3"),
            504 => assert_eq!(
                resp.json::<Value>().await.expect("json"),
                json!({"message": "Endpoint request timed out"})
            ),
            _ => {}
        }
        out.push(status);
    }
    let injected = &t.admin_get("stats").await["faults_injected"];
    let count = |k: &str| injected[k].as_u64().unwrap_or(0) as usize;
    assert_eq!(
        count("too_many_requests"),
        out.iter().filter(|s| **s == 429).count()
    );
    assert_eq!(
        count("server_error"),
        out.iter().filter(|s| **s == 502).count()
    );
    assert_eq!(
        count("gateway_timeout"),
        out.iter().filter(|s| **s == 504).count()
    );
    out
}

#[tokio::test]
async fn http_faults_are_reproducible_from_the_seed() {
    let a = statuses(7, "amcdeterministic").await;
    assert_eq!(a, statuses(7, "amcdeterministic").await, "same seed");
    for code in [200, 429, 502, 504] {
        assert!(a.contains(&code), "{code} in {a:?}");
    }
    assert_ne!(a, statuses(8, "amcdeterministic").await, "another seed");
    assert_ne!(a, statuses(7, "amcother").await, "another instance");
}

#[tokio::test]
async fn slow_answers_wait_before_answering() {
    let t = TestSim::start(|_| {}).await;
    set_faults(
        &t,
        one("list", 1.0, json!({"kind": "slow", "delay_ms": 400})),
    )
    .await;
    let started = Instant::now();
    assert_eq!(list_status(&t).await, 200);
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert_eq!(t.admin_get("stats").await["faults_injected"]["slow"], 1);
}

#[tokio::test]
async fn token_expiry_invalidates_the_token_until_a_refresh() {
    let mut t = TestSim::start(|_| {}).await;
    set_faults(&t, one("list", 1.0, json!({"kind": "expired_token"}))).await;
    let resp = t.amc(reqwest::Method::GET, "").send().await.expect("list");
    assert_eq!(resp.status(), 401);
    assert_eq!(
        resp.json::<Value>().await.expect("json")["details"],
        "Authentication failed"
    );
    set_faults(&t, json!({"rules": []})).await;
    assert_eq!(list_status(&t).await, 401, "the token stays invalid");
    t.token = t.exchange(crate::REFRESH).await;
    assert_eq!(list_status(&t).await, 200);
    let stats = t.admin_get("stats").await;
    assert_eq!(stats["token_exchanges_by_refresh_token"][crate::REFRESH], 2);

    // With expired_token_status 403 the answer is AMC's 403.
    set_faults(
        &t,
        json!({"expired_token_status": 403, "rules": [
            {"route": "list", "probability": 1.0, "fault": {"kind": "expired_token"}}]}),
    )
    .await;
    let resp = t.amc(reqwest::Method::GET, "").send().await.expect("list");
    assert_eq!(resp.status(), 403);
    assert_eq!(
        resp.json::<Value>().await.expect("json"),
        json!({"code": "403", "details": "Unauthorized request."})
    );
}

async fn listed(t: &TestSim) -> Vec<Value> {
    let v: Value = t
        .amc(reqwest::Method::GET, "?includeWorkflow=true")
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    v["executions"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn lost_create_answers_still_create_the_run() {
    let t = TestSim::start(|c| c.run_duration = Duration::from_secs(60)).await;
    set_faults(
        &t,
        one(
            "create",
            1.0,
            json!({"kind": "lost_answer", "mode": "bad_gateway"}),
        ),
    )
    .await;
    let resp = t
        .amc(reqwest::Method::POST, "")
        .json(&window_body("SELECT lost_502"))
        .send()
        .await
        .expect("create");
    assert_eq!(resp.status(), 502);
    assert!(
        !resp
            .text()
            .await
            .expect("body")
            .contains("workflowExecutionId")
    );

    set_faults(
        &t,
        one(
            "create",
            1.0,
            json!({"kind": "lost_answer", "mode": "drop"}),
        ),
    )
    .await;
    let dropped = async {
        let resp = t
            .amc(reqwest::Method::POST, "")
            .json(&window_body("SELECT lost_drop"))
            .send()
            .await?;
        resp.json::<Value>().await
    }
    .await;
    assert!(
        dropped.is_err(),
        "a dropped answer is an error: {dropped:?}"
    );

    set_faults(
        &t,
        one(
            "create",
            1.0,
            json!({"kind": "lost_answer", "mode": "timeout", "delay_ms": 2000}),
        ),
    )
    .await;
    let timed_out = t
        .amc(reqwest::Method::POST, "")
        .timeout(Duration::from_millis(300))
        .json(&window_body("SELECT lost_timeout"))
        .send()
        .await;
    assert!(timed_out.is_err_and(|e| e.is_timeout()));

    let sqls: Vec<String> = listed(&t)
        .await
        .iter()
        .map(|e| e["sqlQuery"].as_str().unwrap_or_default().to_owned())
        .collect();
    for sql in ["SELECT lost_502", "SELECT lost_drop", "SELECT lost_timeout"] {
        assert!(sqls.iter().any(|s| s == sql), "{sql} in {sqls:?}");
    }
    let stats = t.admin_get("stats").await;
    assert_eq!(stats["creates"], 3);
    assert_eq!(stats["faults_injected"]["lost_answer"], 3);
    assert!(
        stats["runs"]
            .as_array()
            .expect("runs")
            .iter()
            .all(|r| r["submissions"] == 1)
    );
}

#[tokio::test]
async fn held_answers_are_released_after_the_delay() {
    let t = TestSim::start(|c| c.run_duration = Duration::from_secs(60)).await;
    set_faults(
        &t,
        one(
            "create",
            1.0,
            json!({"kind": "held_answer", "delay_ms": 500}),
        ),
    )
    .await;
    let started = Instant::now();
    let body = t.create("SELECT held_by_chance").await;
    assert!(started.elapsed() >= Duration::from_millis(500));
    assert_eq!(body["status"], "PENDING");
    assert_eq!(
        t.admin_get("stats").await["faults_injected"]["held_answer"],
        1
    );
}

#[tokio::test]
async fn retried_creates_count_as_submissions_of_one_request() {
    let t = TestSim::start(|c| c.run_duration = Duration::from_secs(60)).await;
    set_faults(
        &t,
        one(
            "create",
            0.5,
            json!({"kind": "server_error", "status": 500}),
        ),
    )
    .await;
    let mut tries = 0;
    loop {
        tries += 1;
        let resp = t
            .amc(reqwest::Method::POST, "")
            .json(&window_body("SELECT retried"))
            .send()
            .await
            .expect("create");
        if resp.status() == 200 {
            break;
        }
        assert_eq!(resp.status(), 500);
        assert!(tries < 40, "never created");
    }
    let stats = t.admin_get("stats").await;
    assert_eq!(stats["runs"][0]["submissions"], tries);
}
