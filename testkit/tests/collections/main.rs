//! Collections against the real binaries, Postgres, Redis and amc-sim: a 52-week
//! collection four at a time with its combined results, fair sharing of an instance with
//! direct runs, restarts (worker and scheduler SIGKILLed, Redis flushed), pause, cancel,
//! retries of injected failures, retry-failed, and the API's answers to bad input.
//! Run `cargo build --workspace --bins` first (`ops/test` does).

mod api;
mod control;
mod fair;
mod one;
mod restarts;

use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use serde_json::{Value, json};
use std::time::Duration;
use testkit::{Client, System};

/// A workflow whose SQL names its collection (`{{tag}}`) and each window's first day.
pub const SQL: &str = "SELECT campaign, SUM(impressions) AS impressions FROM dsp_impressions \
    WHERE tag = '{{tag}}' AND day >= '{{window_start}}' GROUP BY campaign";

/// Short AMC runs and checks, so a year of weeks takes seconds.
pub fn fast_env() -> Vec<(&'static str, String)> {
    vec![
        ("AMP_POLL_MIN", "100ms".into()),
        ("AMP_POLL_MAX", "200ms".into()),
    ]
}

/// A logged-in user with a connection, an account, an instance (`amc`, cap `cap`) and
/// the workflow.
pub async fn user(
    sys: &System,
    email: &str,
    amc: &str,
    cap: u32,
) -> (Client, testkit::system::FirstRun) {
    let mut c = sys.client();
    c.register_and_login(email).await;
    let setup = c
        .first_run_setup(amc, cap, SQL, json!({"tag": "none"}))
        .await;
    (c, setup)
}

/// Creates a collection with `extra` fields; returns its body.
pub async fn collection(c: &Client, workflow: &str, tag: &str, extra: Value) -> Value {
    let mut body = json!({"workflow_id": workflow, "parameters": {"tag": tag}});
    for (k, v) in extra.as_object().into_iter().flatten() {
        body[k] = v.clone();
    }
    let (s, b) = c.post("/collections", body).await;
    assert_eq!(s, 201, "create collection: {b}");
    b
}

/// Waits until `check` holds for the collection (or the timeout); returns its last body.
pub async fn wait_for(
    c: &Client,
    id: &str,
    timeout: Duration,
    check: impl Fn(&Value) -> bool,
) -> Value {
    c.wait_for(&format!("/collections/{id}"), timeout, check)
        .await
}

/// Waits until the collection has ended.
pub async fn wait_ended(c: &Client, id: &str, timeout: Duration) -> Value {
    wait_for(c, id, timeout, |b| !b["completed_at"].is_null()).await
}

/// Every window, paging through `/windows` `limit` at a time.
pub async fn windows(c: &Client, id: &str, limit: u32) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor = String::new();
    loop {
        let (s, b) = c
            .get(&format!(
                "/collections/{id}/windows?limit={limit}&cursor={cursor}"
            ))
            .await;
        assert_eq!(s, 200, "{b}");
        out.extend(b["items"].as_array().cloned().unwrap_or_default());
        match b["next_cursor"].as_str() {
            Some(next) => cursor = next.to_string(),
            None => return out,
        }
    }
}

/// Rows of a query on the system's database, as JSON objects.
pub async fn rows(db: &DatabaseConnection, sql: &str) -> Vec<Value> {
    let wrapped = format!("SELECT to_jsonb(q) AS row FROM ({sql}) q");
    db.query_all_raw(Statement::from_string(
        sea_orm::DbBackend::Postgres,
        wrapped,
    ))
    .await
    .expect("query")
    .into_iter()
    .map(|r| r.try_get::<Value>("", "row").expect("row"))
    .collect()
}

/// The payload of the collection's one event of `event_type` (there must be exactly one).
pub async fn only_event(db: &DatabaseConnection, id: &str, event_type: &str) -> Value {
    let events = rows(
        db,
        &format!(
            "SELECT payload FROM events WHERE subject_id = '{id}' AND event_type = '{event_type}'"
        ),
    )
    .await;
    assert_eq!(events.len(), 1, "{event_type} of {id}: {events:?}");
    events[0]["payload"].clone()
}

/// A collection's `counts`.
pub fn counts(queued: u32, running: u32, succeeded: u32, failed: u32, cancelled: u32) -> Value {
    json!({"queued": queued, "running": running, "succeeded": succeeded, "failed": failed,
           "cancelled": cancelled})
}

/// The sim's runs of one AMC instance.
pub async fn sim_runs(sys: &System, amc_instance: &str) -> Vec<Value> {
    let stats = sys.sim_stats().await.expect("stats");
    stats["runs"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r["instance_id"] == amc_instance)
        .collect()
}
