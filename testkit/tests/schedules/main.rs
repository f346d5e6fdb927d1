//! Schedules against the real binaries, Postgres, Redis and amc-sim: exactly once across
//! scheduler replicas (with a SIGKILL and cron edits), catch-up after downtime, overlap
//! policies, auto-pause, windows, triggers and the API's answers to bad input.
//! Run `cargo build --workspace --bins` first (`ops/test` does).

mod api;
mod catch_up;
mod exactly_once;
mod overlap;
mod pause;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use serde_json::{Value, json};
use testkit::{Client, System};

/// A workflow whose SQL names its schedule (`{{tag}}`) and fills the fire's window.
pub const SQL: &str = "SELECT campaign, SUM(impressions) AS impressions FROM dsp_impressions \
    WHERE tag = '{{tag}}' AND day BETWEEN '{{window_start}}' AND '{{window_end}}' GROUP BY campaign";

/// A logged-in user with a connection, an account, an instance (cap 50) and the workflow.
pub async fn user(sys: &System, email: &str) -> (Client, testkit::system::FirstRun) {
    let mut c = sys.client();
    c.register_and_login(email).await;
    let setup = c
        .first_run_setup("amcinst01", 50, SQL, json!({"tag": "none"}))
        .await;
    (c, setup)
}

/// Creates a schedule of `workflow` with `extra` fields; returns its body.
pub async fn schedule(c: &Client, workflow: &str, tag: &str, cron: &str, extra: Value) -> Value {
    let mut body = json!({
        "workflow_id": workflow,
        "name": format!("schedule {tag}"),
        "cron": cron,
        "time_window": {"kind": "previous_day"},
        "parameters": {"tag": tag},
    });
    for (k, v) in extra.as_object().into_iter().flatten() {
        body[k] = v.clone();
    }
    let (s, b) = c.post("/schedules", body).await;
    assert_eq!(s, 201, "create schedule: {b}");
    b
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

pub fn instant(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().unwrap_or_else(|| panic!("not an instant: {v}")))
        .unwrap_or_else(|e| panic!("{v}: {e}"))
        .with_timezone(&Utc)
}

/// Whole-second instants in `[from, to]` whose second-of-minute is a multiple of `every`
/// (a `*/every * * * * *` rule).
pub fn ticks(from: DateTime<Utc>, to: DateTime<Utc>, every: u32) -> Vec<DateTime<Utc>> {
    use chrono::Timelike;
    let mut t = from.with_nanosecond(0).expect("whole second");
    if t < from {
        t += chrono::Duration::seconds(1);
    }
    let mut out = Vec::new();
    while t <= to {
        if t.second().is_multiple_of(every) {
            out.push(t);
        }
        t += chrono::Duration::seconds(1);
    }
    out
}
