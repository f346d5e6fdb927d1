//! Saved workflows for big queries: a rendered query over the ad hoc size limit
//! (`AMP_AMC_ADHOC_MAX_BYTES`, default 102,400 bytes, an assumption shared with amc-sim)
//! runs through a saved workflow at AMC, created once even when the worker dies mid-submit,
//! and the scheduler deletes saved workflows no unfinished run needs once the grace has
//! passed.

use crate::{SQL, assert_all_succeeded, rendered, wait_held};
use common::saved_workflow::SavedWorkflow;
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::{Value, json};
use std::time::Duration;
use testkit::{System, SystemOptions, wait_until};

/// A query that grows with its `campaigns` list.
const BIG_SQL: &str = "SELECT campaign, SUM(impressions) AS impressions FROM dsp_impressions \
    WHERE run_no = {{n}} AND campaign IN ({{campaigns}}) GROUP BY campaign";

/// Run `n`'s parameters: 9,400 campaign ids (11 bytes each as rendered), so the query is
/// just over 100 KiB.
fn big_params(n: u64) -> Value {
    let campaigns: Vec<String> = (0..9_400).map(|i| format!("c{i:06}")).collect();
    json!({"n": n, "campaigns": campaigns})
}

/// The saved workflows amc-sim holds: `(workflow_id, sql_bytes)`.
fn saved_at_amc(stats: &Value) -> Vec<(String, u64)> {
    stats["workflows"]
        .as_array()
        .expect("workflows")
        .iter()
        .map(|w| {
            (
                w["workflow_id"].as_str().expect("id").to_owned(),
                w["sql_bytes"].as_u64().expect("bytes"),
            )
        })
        .collect()
}

/// The saved workflow a finished run records, checked against its SQL.
fn workflow_of(run: &Value) -> String {
    let sql = run["sql_query"].as_str().expect("sql");
    let id = run["amc_workflow_id"].as_str().expect("a saved workflow");
    assert_eq!(id, SavedWorkflow::for_sql(sql).id.as_str(), "{id}");
    id.to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100_kb_rendered_query_succeeds_through_a_saved_workflow() {
    let sys = System::start(SystemOptions::default())
        .await
        .expect("system");
    let mut c = sys.client();
    c.register_and_login("bigquery@example.com").await;
    let setup = c.first_run_setup("amcbig", 10, BIG_SQL, json!({})).await;
    let small_workflow = c.workflow(&setup.instance_id, SQL, json!({})).await;
    let big = c.run(&setup.workflow_id, big_params(1)).await;
    let small = c.run(&small_workflow, json!({"n": 1})).await;
    let runs = c
        .wait_terminal(&[big, small], Duration::from_secs(60))
        .await;
    assert_all_succeeded(&runs);
    let sql = runs[0]["sql_query"].as_str().expect("sql").to_owned();
    assert!(
        (102_401..110_000).contains(&sql.len()),
        "a query of about 100 KB: {} bytes",
        sql.len()
    );
    let workflow = workflow_of(&runs[0]);
    assert!(runs[1]["amc_workflow_id"].is_null(), "{}", runs[1]);

    let stats = sys.sim_stats().await.expect("stats");
    assert_eq!(saved_at_amc(&stats), [(workflow.clone(), sql.len() as u64)]);
    assert_eq!(stats["workflow_creates"], 1);
    // One execution by workflowId, with the saved SQL; the small query went ad hoc.
    let at_amc = sys.sim_runs_matching(&sql).await.expect("runs");
    assert_eq!(at_amc.len(), 1, "one AMC execution");
    assert_eq!(at_amc[0]["workflow_id"], workflow.as_str());
    assert_eq!(
        at_amc[0]["workflow_execution_id"],
        runs[0]["amc_execution_id"]
    );
    let small_at_amc = sys.sim_runs_matching(&rendered(1)).await.expect("runs");
    assert_eq!(small_at_amc.len(), 1);
    assert!(
        small_at_amc[0]["workflow_id"]
            .as_str()
            .is_some_and(|w| w.starts_with("transient_")),
        "{}",
        small_at_amc[0]
    );
    sys.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_create_answer_and_a_sigkilled_worker_give_one_saved_workflow_and_one_execution() {
    let mut sys = System::start(SystemOptions::default())
        .await
        .expect("system");
    let mut c = sys.client();
    c.register_and_login("bigheld@example.com").await;
    let setup = c
        .first_run_setup("amcbigheld", 10, BIG_SQL, json!({}))
        .await;
    sys.sim_admin("hold-next-create", json!({})).await.unwrap();
    let id = c.run(&setup.workflow_id, big_params(7)).await;
    assert!(wait_held(&sys).await, "amc-sim never held a create");
    // The workflow is saved and its execution exists at AMC; the worker waits for the
    // execution's id. Kill it.
    sys.workers[0].sigkill().await;
    sys.sim_admin("release", json!({})).await.unwrap();
    let (_, e) = c.get(&format!("/executions/{id}")).await;
    assert_eq!(e["status"], "submitting", "{e}");
    assert!(e["amc_execution_id"].is_null());
    let workflow = workflow_of(&e);
    let replacement = sys.spawn_worker().unwrap();
    sys.workers.push(replacement);
    let runs = c
        .wait_terminal(std::slice::from_ref(&id), Duration::from_secs(60))
        .await;
    assert_all_succeeded(&runs);
    let sql = runs[0]["sql_query"].as_str().expect("sql");
    let stats = sys.sim_stats().await.expect("stats");
    assert_eq!(saved_at_amc(&stats), [(workflow.clone(), sql.len() as u64)]);
    assert_eq!(stats["workflow_creates"], 1);
    let at_amc = sys.sim_runs_matching(sql).await.expect("runs");
    assert_eq!(at_amc.len(), 1, "exactly one AMC execution");
    assert_eq!(at_amc[0]["workflow_id"], workflow.as_str());
    assert_eq!(
        at_amc[0]["workflow_execution_id"],
        runs[0]["amc_execution_id"]
    );
    sys.cleanup().await;
}

/// A run (`quick`) that has finished leaves its saved workflow unneeded: once the grace
/// has passed the scheduler deletes it at AMC. The saved workflow of a run still going
/// (`slow`, held PUBLISHING at AMC) stays until that run ends. A recorded workflow AMC no
/// longer has is forgotten all the same (the delete is idempotent).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduler_deletes_saved_workflows_no_run_needs_after_the_grace() {
    let plan = json!({"rules": [{"route": "run", "probability": 1.0,
        "match": {"sql_contains": "'slow'"},
        "fault": {"kind": "status_detour", "status": "PUBLISHING", "duration_ms": 8_000}}]});
    let mut opts = SystemOptions::default();
    opts.sim.faults = amc_sim::faults::FaultsDoc::from_value(&plan)
        .expect("plan")
        .plan;
    // Every query of this test is "big"; short clocks.
    opts.env = vec![
        ("AMP_AMC_ADHOC_MAX_BYTES", "64".into()),
        ("AMP_AMC_SAVED_WORKFLOW_GRACE", "1s".into()),
        ("AMP_PRUNE_INTERVAL", "1s".into()),
    ];
    let sys = System::start(opts).await.expect("system");
    let mut c = sys.client();
    c.register_and_login("savedcleanup@example.com").await;
    let sql = format!("{SQL} HAVING {{{{pace}}}} <> ''");
    let setup = c.first_run_setup("amcsavedgc", 10, &sql, json!({})).await;
    let quick = c
        .run(&setup.workflow_id, json!({"n": 1, "pace": "quick"}))
        .await;
    let slow = c
        .run(&setup.workflow_id, json!({"n": 2, "pace": "slow"}))
        .await;
    let done = c
        .wait_terminal(std::slice::from_ref(&quick), Duration::from_secs(30))
        .await;
    assert_all_succeeded(&done);
    let quick_workflow = workflow_of(&done[0]);
    let (_, s) = c.get(&format!("/executions/{slow}")).await;
    let slow_workflow = s["amc_workflow_id"].as_str().expect("recorded").to_owned();
    let ids = |stats: &Value| -> Vec<String> {
        saved_at_amc(stats).into_iter().map(|(id, _)| id).collect()
    };
    let gone = wait_until(Duration::from_secs(15), || async {
        let stats = sys.sim_stats().await.expect("stats");
        !ids(&stats).contains(&quick_workflow)
    })
    .await;
    assert!(gone, "the finished run's saved workflow is deleted at AMC");
    let (_, s) = c.get(&format!("/executions/{slow}")).await;
    assert_eq!(s["status"], "running", "the slow run still runs: {s}");
    let stats = sys.sim_stats().await.expect("stats");
    assert_eq!(ids(&stats), [slow_workflow]);

    let db = sys.db.connect().await.expect("db");
    let instance = setup.instance_id.clone();
    db.execute_unprepared(&format!(
        "INSERT INTO amc_saved_workflows (instance_id, workflow_id, sql_hash, last_used_at) \
             VALUES ('{instance}', 'amp_gone', 'x', now() - interval '1 hour')"
    ))
    .await
    .expect("a workflow AMC does not have");
    let finished = c
        .wait_terminal(std::slice::from_ref(&slow), Duration::from_secs(30))
        .await;
    assert_all_succeeded(&finished);
    let recorded = || async {
        db.query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT workflow_id FROM amc_saved_workflows",
        ))
        .await
        .expect("rows")
        .len()
    };
    let all_gone = wait_until(Duration::from_secs(15), || async {
        let stats = sys.sim_stats().await.expect("stats");
        ids(&stats).is_empty() && recorded().await == 0
    })
    .await;
    assert!(all_gone, "every saved workflow deleted, and forgotten");
    let stats = sys.sim_stats().await.expect("stats");
    assert_eq!(stats["workflow_creates"], 2);
    assert_eq!(stats["workflow_deletes"], 2);
    sys.cleanup().await;
}
