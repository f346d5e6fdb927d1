//! The procedures of `ops/RUNBOOK.md`, run against the real binaries, Postgres, Redis and
//! amc-sim: a worker drained with SIGTERM (a scale-in) loses nothing and hands back at
//! once (the remaining worker holds its jobs within 3 s, with claims and reconciles ruled
//! out); `AMP_DATABASE_MAX_CONNECTIONS` caps each process's pool under load; dead jobs are
//! replayed with `migrate replay-dead-jobs`; Redis restarted empty and a private Postgres
//! cluster restarted with runs in flight, every run ending right and submitted once;
//! `migrate rotate-encryption-key` while the system runs, then the new key alone; JWT
//! secret rotation; `migrate create-admin`.
//! Run `cargo build --workspace --bins` first (`ops/test` does).

mod admin;
mod dead_jobs;
mod drain;
mod keys;
mod pool;
mod restarts;

use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::Duration;
use testkit::{Client, System};

/// Every run is unique by `{{n}}`, so amc-sim's runs map to executions.
pub const SQL: &str = "SELECT campaign FROM dsp_impressions WHERE runbook_no = {{n}}";

/// A logged-in user with a connection, an account, an instance (cap `cap`) and a
/// workflow of [`SQL`]; returns the client and the workflow's id.
pub async fn user(sys: &System, tag: &str, cap: u32) -> (Client, String) {
    let mut c = sys.client();
    c.register_and_login(&format!("{tag}@example.com")).await;
    let setup = c
        .first_run_setup(&format!("amcrb{tag}"), cap, SQL, json!({"n": 0}))
        .await;
    (c, setup.workflow_id)
}

/// Starts runs `from..to` of `workflow`; returns their ids.
pub async fn start_runs(c: &Client, workflow: &str, from: u64, to: u64) -> Vec<String> {
    let mut ids = Vec::new();
    for n in from..to {
        ids.push(c.run(workflow, json!({"n": n})).await);
    }
    ids
}

/// Asserts every run succeeded with amc-sim's rows and that amc-sim received each run's
/// query exactly once.
pub async fn assert_each_succeeded_once(sys: &System, runs: &[Value]) {
    let stats = sys.sim_stats().await.expect("sim stats");
    let mut per_sql: HashMap<&str, usize> = HashMap::new();
    for r in stats["runs"].as_array().into_iter().flatten() {
        *per_sql
            .entry(r["sql_query"].as_str().unwrap_or_default())
            .or_default() += 1;
    }
    for e in runs {
        assert_eq!(e["status"], "succeeded", "run did not succeed: {e}");
        let sql = e["sql_query"].as_str().expect("sql");
        assert_eq!(
            e["row_count"].as_u64(),
            Some(amc_sim::expected_rows(sql)),
            "row count of {e}"
        );
        assert_eq!(per_sql.get(sql).copied(), Some(1), "AMC runs of {e}");
    }
}

/// How many of `ids` amc-sim has received.
pub async fn submitted(sys: &System, c: &Client, ids: &[String]) -> usize {
    let stats = sys.sim_stats().await.expect("sim stats");
    let sent: std::collections::HashSet<&str> = stats["runs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["sql_query"].as_str())
        .collect();
    let mut n = 0;
    for id in ids {
        let (_, e) = c.get(&format!("/executions/{id}")).await;
        if e["sql_query"].as_str().is_some_and(|s| sent.contains(s)) {
            n += 1;
        }
    }
    n
}

/// A process's `/readyz` status code (0 when it does not answer).
pub async fn readyz(sys: &System, base: &str) -> u16 {
    sys.http
        .get(format!("{base}/readyz"))
        .timeout(Duration::from_secs(3))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}
