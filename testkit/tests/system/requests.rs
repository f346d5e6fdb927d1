//! What clients send: idempotency keys, bad input, tenancy and cancellation.

use crate::SQL;
use serde_json::{Value, json};
use std::time::Duration;
use testkit::{Client, System, SystemOptions, wait_until};

fn window() -> Value {
    json!({"start": "2026-01-01T00:00:00", "end": "2026-01-08T00:00:00"})
}

async fn post_with_key(c: &Client, wf: &str, key: &str, n: u64) -> (u16, Value) {
    c.send(
        reqwest::Method::POST,
        &format!("/workflows/{wf}/executions"),
        Some(json!({"parameters": {"n": n}, "time_window": window()})),
        &[("Idempotency-Key", key)],
    )
    .await
}

fn assert_problem(status: u16, body: &Value, expected: u16, mentions: &str) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(
        body["status"].as_u64(),
        Some(u64::from(expected)),
        "problem body: {body}"
    );
    assert!(
        body["title"].is_string() && body["detail"].is_string(),
        "problem body: {body}"
    );
    assert!(
        body.to_string().contains(mentions),
        "`{mentions}` not named in {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_keys_bad_input_tenancy_and_cancel() {
    let mut opts = SystemOptions::default();
    opts.sim.run_duration = Duration::from_secs(30);
    let sys = System::start(opts).await.expect("system");
    let mut alice = sys.client();
    alice.register_and_login("alice@example.com").await;
    let a = alice.first_run_setup("amcreq", 1, SQL, json!({})).await;
    let mut bob = sys.client();
    bob.register_and_login("bob@example.com").await;
    let b = bob.first_run_setup("amcreqb", 1, SQL, json!({})).await;

    // The same key twice, and ten times concurrently: one execution each.
    let (s1, e1) = post_with_key(&alice, &a.workflow_id, "key-1", 1).await;
    let (s2, e2) = post_with_key(&alice, &a.workflow_id, "key-1", 1).await;
    assert_eq!((s1, s2), (202, 202));
    assert_eq!(e1["id"], e2["id"]);
    let concurrent = futures_join(&alice, &a.workflow_id, "key-2").await;
    assert!(concurrent.iter().all(|(s, _)| *s == 202), "{concurrent:?}");
    let first = &concurrent[0].1["id"];
    assert!(
        concurrent.iter().all(|(_, e)| &e["id"] == first),
        "one execution for one key: {concurrent:?}"
    );
    // The same key with another body → 422.
    let (s, body) = post_with_key(&alice, &a.workflow_id, "key-1", 2).await;
    assert_problem(s, &body, 422, "Idempotency-Key");
    // Another user's identical key is independent.
    let (s, eb) = post_with_key(&bob, &b.workflow_id, "key-1", 1).await;
    assert_eq!(s, 202);
    assert_ne!(eb["id"], e1["id"]);

    // Parameters: missing and unknown are named.
    let (s, body) = alice
        .post(
            &format!("/workflows/{}/executions", a.workflow_id),
            json!({"parameters": {}, "time_window": window()}),
        )
        .await;
    assert_problem(s, &body, 422, "parameters.n");
    let (s, body) = alice
        .post(
            &format!("/workflows/{}/executions", a.workflow_id),
            json!({"parameters": {"n": 1, "bogus": 2}, "time_window": window()}),
        )
        .await;
    assert_problem(s, &body, 422, "bogus");
    let (s, body) = alice
        .post(
            &format!("/workflows/{}/executions", a.workflow_id),
            json!({"parameters": {"n": 1}, "time_window": {"start": "2026-01-08T00:00:00", "end": "2026-01-01T00:00:00"}}),
        )
        .await;
    assert_problem(s, &body, 422, "time_window.end");
    // Malformed JSON → 400 problem+json.
    let resp = alice
        .http
        .post(format!(
            "{}/workflows/{}/executions",
            alice.base, a.workflow_id
        ))
        .bearer_auth(alice.token.as_ref().unwrap())
        .header("content-type", "application/json")
        .body("{\"parameters\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    // No token → 401 problem+json.
    let anonymous = sys.client();
    let (s, body) = anonymous
        .post(
            &format!("/workflows/{}/executions", a.workflow_id),
            json!({}),
        )
        .await;
    assert_problem(s, &body, 401, "");
    // Another user's workflow and execution → 404.
    let (s, body) = bob
        .post(
            &format!("/workflows/{}/executions", a.workflow_id),
            json!({"parameters": {"n": 1}, "time_window": window()}),
        )
        .await;
    assert_problem(s, &body, 404, "workflow");
    let (s, body) = bob
        .get(&format!("/executions/{}", e1["id"].as_str().unwrap()))
        .await;
    assert_problem(s, &body, 404, "execution");

    // Cancel: instance cap 1 and 30 s runs, so key-1's run is at AMC and key-2's is queued.
    let running = e1["id"].as_str().unwrap().to_string();
    let queued = first.as_str().unwrap().to_string();
    assert!(
        wait_until(Duration::from_secs(20), || async {
            alice.get(&format!("/executions/{running}")).await.1["status"] == "running"
        })
        .await
    );
    let (s, q) = alice
        .post(&format!("/executions/{queued}/cancel"), json!({}))
        .await;
    assert_eq!((s, q["status"].as_str()), (200, Some("cancelled")), "{q}");
    let (s, r) = alice
        .post(&format!("/executions/{running}/cancel"), json!({}))
        .await;
    assert_eq!((s, r["status"].as_str()), (200, Some("running")), "{r}");
    assert!(r["cancel_requested_at"].is_string());
    let ended = alice
        .wait_terminal(std::slice::from_ref(&running), Duration::from_secs(20))
        .await;
    assert_eq!(ended[0]["status"], "cancelled", "{}", ended[0]);
    assert_eq!(
        sys.sim_stats().await.unwrap()["cancels"].as_u64(),
        Some(1),
        "cancelled at AMC"
    );
    // A terminal run → 409.
    let (s, body) = alice
        .post(&format!("/executions/{queued}/cancel"), json!({}))
        .await;
    assert_problem(s, &body, 409, "ended");
    // Results of a run that did not succeed → 409.
    let (s, body) = alice.get(&format!("/executions/{queued}/results")).await;
    assert_problem(s, &body, 409, "cancelled");
    sys.cleanup().await;
}

async fn futures_join(c: &Client, wf: &str, key: &str) -> Vec<(u16, Value)> {
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let (c, wf, key) = (c.clone(), wf.to_string(), key.to_string());
        set.spawn(async move { post_with_key(&c, &wf, &key, 5).await });
    }
    let mut out = Vec::new();
    while let Some(r) = set.join_next().await {
        out.push(r.expect("join"));
    }
    out
}
