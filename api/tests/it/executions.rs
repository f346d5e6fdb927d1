//! `POST /workflows/{id}/executions` under concurrency: requests that arrive together share
//! one transaction, and each caller still gets its own answer.

use crate::helpers::{TestApp, spawn_app};
use common::jobs::SubmitJob;
use queue::Job;
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::{Value, json};
use std::collections::HashSet;
use uuid::Uuid;

const SQL: &str = "SELECT campaign FROM dsp_impressions WHERE run_no = {{n}}";

async fn post(app: &TestApp, token: &str, wf: Uuid, n: u64, key: Option<&str>) -> (u16, Value) {
    send(&Caller::of(app, token), wf, n, key).await
}

/// Who sends a run request, and where (cheap to clone into a task).
#[derive(Clone)]
struct Caller {
    client: reqwest::Client,
    address: String,
    token: String,
}

impl Caller {
    fn of(app: &TestApp, token: &str) -> Self {
        Self {
            client: app.client.clone(),
            address: app.address.clone(),
            token: token.to_string(),
        }
    }
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    let row = app
        .db
        .query_one_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await
        .expect("count")
        .expect("a row");
    row.try_get_by_index::<i64>(0).expect("bigint")
}

/// `n` runs were written, each with its first audit row, its event and its submit job.
async fn assert_written(app: &TestApp, n: i64) {
    assert_eq!(count(app, "SELECT count(*) FROM executions").await, n);
    assert_eq!(
        count(app, "SELECT count(*) FROM execution_transitions WHERE from_status IS NULL AND to_status = 'queued'").await,
        n
    );
    assert_eq!(
        count(
            app,
            "SELECT count(*) FROM events WHERE event_type = 'execution.queued'"
        )
        .await,
        n
    );
    let stats = app
        .state
        .producer
        .stats(SubmitJob::QUEUE)
        .await
        .expect("stats");
    assert_eq!(stats.queued, n as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_share_transactions_and_answer_each_caller() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    app.connect_amazon(&user).await;
    let (_, _, wf) = app.create_workflow(&user, SQL, json!({"n": 0})).await;
    let token = user.access_token.as_str();

    // 150 runs without a key and 20 keys sent twice each, all at once.
    let mut calls = Vec::new();
    for n in 0..150u64 {
        calls.push(tokio::spawn({
            let caller = Caller::of(&app, token);
            async move { (n, None, send(&caller, wf, n, None).await) }
        }));
    }
    for k in 0..40u64 {
        let key = format!("key-{}", k % 20);
        calls.push(tokio::spawn({
            let caller = Caller::of(&app, token);
            async move {
                let r = send(&caller, wf, 1000 + k % 20, Some(&key)).await;
                (1000 + k % 20, Some(key), r)
            }
        }));
    }
    // Unknown workflows in the same moment fail alone.
    let missing: Vec<_> = (0..5)
        .map(|_| {
            let caller = Caller::of(&app, token);
            tokio::spawn(async move { send(&caller, Uuid::new_v4(), 1, None).await })
        })
        .collect();
    let mut unkeyed = HashSet::new();
    let mut answered = Vec::new();
    let mut keyed: std::collections::HashMap<String, HashSet<String>> = Default::default();
    for c in calls {
        let (n, key, (status, body)) = c.await.expect("task");
        assert_eq!(status, 202, "{body}");
        assert_eq!(body["status"], "queued", "{body}");
        assert_eq!(
            body["parameters"]["n"], n,
            "each caller gets its own run: {body}"
        );
        let id = body["id"].as_str().expect("id").to_string();
        if key.is_none() {
            answered.push(body.clone());
        }
        match key {
            None => assert!(unkeyed.insert(id), "an id answered twice"),
            Some(k) => {
                keyed.entry(k).or_default().insert(id);
            }
        }
    }
    for m in missing {
        let (status, body) = m.await.expect("task");
        assert_eq!(status, 404, "{body}");
        assert!(body.to_string().contains("workflow"), "{body}");
    }
    assert_eq!(unkeyed.len(), 150);
    assert_eq!(keyed.len(), 20);
    assert!(
        keyed.values().all(|ids| ids.len() == 1),
        "one run per key: {keyed:?}"
    );

    // Each run has its row, its audit row, its event and its job; fewer commits than runs.
    assert_written(&app, 170).await;
    let commits = count(&app, "SELECT count(DISTINCT xmin::text) FROM executions").await;
    assert!(commits < 170, "{commits} transactions for 170 runs");
    // Each answer is the run as stored: GET shows the same fields and times.
    for body in answered.iter().step_by(15) {
        let resp = app
            .client
            .get(format!(
                "{}/api/v1/executions/{}",
                app.address,
                body["id"].as_str().expect("id")
            ))
            .bearer_auth(token)
            .send()
            .await
            .expect("get");
        assert_eq!(resp.status().as_u16(), 200);
        let stored: Value = resp.json().await.expect("json");
        for field in [
            "status",
            "parameters",
            "sql_query",
            "time_window",
            "created_at",
            "updated_at",
            "instance_id",
            "attempt",
        ] {
            assert_eq!(stored[field], body[field], "{field}: {stored} vs {body}");
        }
    }
    // The audit row and the event carry the run's own time and its public form.
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM executions e JOIN execution_transitions t ON t.execution_id = e.id \
             JOIN events v ON v.subject_id = e.id \
             WHERE t.created_at = e.created_at AND v.created_at = e.created_at \
               AND v.payload->>'id' = e.id::text AND v.payload->>'status' = 'queued' \
               AND (v.payload->>'created_at')::timestamptz = e.created_at \
               AND v.payload->'parameters' = e.parameters"
        )
        .await,
        170
    );

    // A key reused with another body is refused, naming the header; nothing is written.
    let (status, body) = post(&app, token, wf, 5, Some("key-3")).await;
    assert_eq!(status, 422, "{body}");
    assert!(body.to_string().contains("Idempotency-Key"), "{body}");
    assert_eq!(count(&app, "SELECT count(*) FROM executions").await, 170);
    // Parameters are checked against the workflow: an unknown one is named.
    let resp = app
        .client
        .post(format!("{}/api/v1/workflows/{wf}/executions", app.address))
        .bearer_auth(token)
        .json(&json!({"parameters": {"n": 1, "bogus": 2},
            "time_window": {"start": "2026-01-01T00:00:00", "end": "2026-01-08T00:00:00"}}))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 422);
    assert!(
        resp.text()
            .await
            .unwrap_or_default()
            .contains("parameters.bogus")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_request_that_fails_its_batch_fails_alone() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    app.connect_amazon(&user).await;
    let (_, _, wf) = app.create_workflow(&user, SQL, json!({"n": 0})).await;
    let token = user.access_token.as_str();
    // Postgres refuses one run: the shared statement of its batch fails.
    for sql in [
        "CREATE FUNCTION refuse_thirteen() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
           IF NEW.parameters->>'n' = '13' THEN RAISE EXCEPTION 'run 13 refused'; END IF; \
           RETURN NEW; END $$",
        "CREATE TRIGGER refuse_thirteen BEFORE INSERT ON executions \
           FOR EACH ROW EXECUTE FUNCTION refuse_thirteen()",
    ] {
        app.db
            .execute_unprepared(sql)
            .await
            .expect("install trigger");
    }
    let calls: Vec<_> = (0..60u64)
        .map(|n| {
            let caller = Caller::of(&app, token);
            tokio::spawn(async move { (n, send(&caller, wf, n, None).await) })
        })
        .collect();
    for c in calls {
        let (n, (status, body)) = c.await.expect("task");
        if n == 13 {
            assert_eq!(status, 500, "{body}");
        } else {
            assert_eq!(status, 202, "run {n}: {body}");
            assert_eq!(body["parameters"]["n"], n, "{body}");
        }
    }
    // Its neighbours were written one by one: each with its audit row, event and job.
    assert_written(&app, 59).await;
}

async fn send(caller: &Caller, wf: Uuid, n: u64, key: Option<&str>) -> (u16, Value) {
    let mut req = caller
        .client
        .post(format!(
            "{}/api/v1/workflows/{wf}/executions",
            caller.address
        ))
        .bearer_auth(&caller.token)
        .json(&json!({
            "parameters": {"n": n},
            "time_window": {"start": "2026-01-01T00:00:00", "end": "2026-01-08T00:00:00"}
        }));
    if let Some(k) = key {
        req = req.header("Idempotency-Key", k);
    }
    let resp = req.send().await.expect("send");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}
