//! Webhooks against the real binaries, Postgres, Redis, amc-sim and local receivers:
//! every completion reaches both receivers (signed as the reference library verifies,
//! retried on the schedule, the same `webhook-id` each time, never accepted twice); a
//! worker SIGKILLed and Redis restarted empty lose nothing; an endpoint down past the
//! disable rule is disabled and its messages skipped, then recovered; a rotated secret
//! and the old one both verify; a slow endpoint does not delay another; private
//! addresses are refused; the API's answers to bad input and other users; the
//! dispatcher's claim and the reconciler's look at deliveries.
//! Run `cargo build --workspace --bins` first (`ops/test` does).

mod api;
mod claims;
mod delivery;
mod disable;
mod isolation;
mod restarts;

use serde_json::{Value, json};
use testkit::{Client, System};

/// Every workflow run here is unique by `{{n}}`.
pub const SQL: &str = "SELECT campaign FROM dsp_impressions WHERE run_no = {{n}}";

/// A logged-in user with a connection, an account, an instance (cap `cap`) and a workflow.
pub async fn user(sys: &System, email: &str, cap: u32) -> (Client, testkit::system::FirstRun) {
    let mut c = sys.client();
    c.register_and_login(email).await;
    let amc = format!("amcwh{}", &email[..email.find('@').unwrap_or(3).min(8)]);
    let setup = c.first_run_setup(&amc, cap, SQL, json!({"n": 0})).await;
    (c, setup)
}

/// Adds an endpoint for the terminal execution events; returns `(id, secret)`.
pub async fn endpoint(c: &Client, url: &str, types: Value) -> (String, String) {
    let (s, b) = c
        .post("/webhooks", json!({"url": url, "event_types": types}))
        .await;
    assert_eq!(s, 201, "create endpoint: {b}");
    (
        b["id"].as_str().unwrap().to_string(),
        b["secret"].as_str().unwrap().to_string(),
    )
}

/// Starts `n` runs; returns their ids.
pub async fn runs(c: &Client, workflow: &str, from: u64, n: u64) -> Vec<String> {
    let mut ids = Vec::with_capacity(n as usize);
    for i in from..from + n {
        ids.push(c.run(workflow, json!({"n": i})).await);
    }
    ids
}

/// The webhook body's JSON.
pub fn body(r: &testkit::Received) -> Value {
    serde_json::from_slice(&r.body).expect("a JSON body")
}
