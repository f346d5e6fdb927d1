//! System tests: the real `api`, `worker` and `scheduler` binaries against real Postgres,
//! real Redis and amc-sim. Run `cargo build --workspace --bins` first (`ops/test` does).

mod cancel;
mod capacity;
mod chaos;
mod faults;
mod first_run;
mod fleet;
mod history;
mod quota;
mod requests;
mod results;
mod retries;
mod saved_workflows;
mod sim_faults;
mod steps;
mod tokens;
mod transport;
mod typed_results;

use serde_json::Value;
use std::collections::HashMap;
use testkit::System;

/// The SQL every test workflow runs: unique per `n`, so amc-sim's runs map to executions.
pub const SQL: &str = "SELECT campaign, SUM(impressions) AS impressions FROM dsp_impressions WHERE run_no = {{n}} GROUP BY campaign";

/// The rendered SQL of run `n` of workflow [`SQL`] (as AMC receives it).
pub fn rendered(n: u64) -> String {
    SQL.replace("{{n}}", &n.to_string())
}

/// How many runs amc-sim holds per distinct SQL.
pub fn runs_per_sql(stats: &Value) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for r in stats["runs"].as_array().into_iter().flatten() {
        *m.entry(r["sql_query"].as_str().unwrap_or_default().to_string())
            .or_insert(0) += 1;
    }
    m
}

/// Asserts every run succeeded with the row count amc-sim serves for its SQL.
pub fn assert_all_succeeded(runs: &[Value]) {
    for e in runs {
        assert_eq!(e["status"], "succeeded", "execution did not succeed: {e}");
        let sql = e["sql_query"].as_str().expect("sql");
        assert_eq!(
            e["row_count"].as_u64(),
            Some(amc_sim::expected_rows(sql)),
            "row count of {e}"
        );
    }
}

/// Checks every run against AMC's own outcome: exactly one AMC run per execution; a run AMC
/// failed is `failed` with AMC's `statusReason` verbatim; every other one `succeeded` with
/// the rows AMC served. Returns how many AMC failed.
pub fn assert_outcomes_match_amc(runs: &[Value], stats: &Value) -> usize {
    let per = runs_per_sql(stats);
    let by_sql: HashMap<&str, &Value> = stats["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .map(|r| (r["sql_query"].as_str().unwrap_or_default(), r))
        .collect();
    let mut failed = 0;
    for e in runs {
        let sql = e["sql_query"].as_str().expect("sql");
        assert_eq!(per.get(sql).copied(), Some(1), "AMC runs for {e}");
        let amc = by_sql[sql];
        if amc["status"] == "FAILED" {
            failed += 1;
            assert_eq!(e["status"], "failed", "{e}");
            assert_eq!(e["error"]["message"], amc["status_reason"], "{e}");
        } else {
            assert_eq!(amc["status"], "SUCCEEDED", "{amc}");
            assert_eq!(e["status"], "succeeded", "{e}");
            assert_eq!(
                e["row_count"].as_u64(),
                Some(amc_sim::expected_rows(sql)),
                "{e}"
            );
        }
    }
    failed
}

/// Waits until amc-sim holds one create answer (after `hold-next-create`); false if it
/// never does within 20 s.
pub async fn wait_held(sys: &System) -> bool {
    testkit::wait_until(std::time::Duration::from_secs(20), || {
        let (h, u) = (
            sys.http.clone(),
            format!("{}/sim/admin/held", sys.sim.base_url()),
        );
        async move {
            let v: Value = match h.get(u).send().await {
                Ok(r) => r.json().await.unwrap_or_default(),
                Err(_) => return false,
            };
            v["held"].as_u64() == Some(1)
        }
    })
    .await
}
