//! Crashes: Redis flushed and restarted, a worker SIGKILLed, a create answer held while
//! the worker dies. Nothing is lost and nothing is submitted twice.

use crate::{SQL, assert_all_succeeded, rendered, runs_per_sql, wait_held};
use serde_json::json;
use std::time::Duration;
use testkit::{System, SystemOptions, wait_until};

async fn thirty_runs(sys: &System, email: &str) -> (testkit::Client, Vec<String>) {
    let mut c = sys.client();
    c.register_and_login(email).await;
    let setup = c.first_run_setup("amcfault", 10, SQL, json!({})).await;
    let mut ids = Vec::new();
    for n in 0..30u64 {
        ids.push(c.run(&setup.workflow_id, json!({"n": n})).await);
    }
    (c, ids)
}

async fn count_status(c: &testkit::Client, ids: &[String], status: &str) -> usize {
    let mut n = 0;
    for id in ids {
        if c.get(&format!("/executions/{id}")).await.1["status"] == status {
            n += 1;
        }
    }
    n
}

fn assert_one_run_each(stats: &serde_json::Value, n: u64) {
    let per = runs_per_sql(stats);
    for i in 0..n {
        assert_eq!(
            per.get(&rendered(i)).copied(),
            Some(1),
            "AMC runs for run {i}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_flushed_and_restarted_mid_run_loses_nothing() {
    let mut opts = SystemOptions {
        private_redis: true,
        ..SystemOptions::default()
    };
    opts.sim.run_duration = Duration::from_secs(2);
    let mut sys = System::start(opts).await.expect("system");
    let (c, ids) = thirty_runs(&sys, "flush@example.com").await;
    assert!(
        wait_until(Duration::from_secs(30), || async {
            count_status(&c, &ids, "running").await >= 5
        })
        .await
    );
    let redis = sys.redis.as_mut().unwrap();
    redis.restart().await.expect("restart redis empty");
    let runs = c.wait_terminal(&ids, Duration::from_secs(120)).await;
    assert_all_succeeded(&runs);
    assert_one_run_each(&sys.sim_stats().await.unwrap(), 30);
    sys.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkilled_worker_loses_nothing_and_submits_nothing_twice() {
    let mut opts = SystemOptions::default();
    opts.sim.run_duration = Duration::from_secs(1);
    let mut sys = System::start(opts).await.expect("system");
    let (c, ids) = thirty_runs(&sys, "kill@example.com").await;
    assert!(
        wait_until(Duration::from_secs(30), || async {
            count_status(&c, &ids, "running").await >= 5
        })
        .await
    );
    sys.workers[0].sigkill().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let replacement = sys.spawn_worker().unwrap();
    sys.workers.push(replacement);
    let runs = c.wait_terminal(&ids, Duration::from_secs(120)).await;
    assert_all_succeeded(&runs);
    assert_one_run_each(&sys.sim_stats().await.unwrap(), 30);
    sys.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_while_amc_holds_the_create_answer_adopts_the_run() {
    let sys = System::start(SystemOptions::default())
        .await
        .expect("system");
    let mut sys = sys;
    let mut c = sys.client();
    c.register_and_login("held@example.com").await;
    let setup = c.first_run_setup("amcheld", 10, SQL, json!({})).await;
    sys.sim_admin("hold-next-create", json!({})).await.unwrap();
    let id = c.run(&setup.workflow_id, json!({"n": 7})).await;
    assert!(wait_held(&sys).await, "amc-sim never held a create");
    // The run exists at AMC; the worker is waiting for the answer. Kill it.
    sys.workers[0].sigkill().await;
    sys.sim_admin("release", json!({})).await.unwrap();
    let (_, e) = c.get(&format!("/executions/{id}")).await;
    assert_eq!(e["status"], "submitting", "{e}");
    assert!(e["amc_execution_id"].is_null());
    let replacement = sys.spawn_worker().unwrap();
    sys.workers.push(replacement);
    let runs = c
        .wait_terminal(std::slice::from_ref(&id), Duration::from_secs(60))
        .await;
    assert_all_succeeded(&runs);
    let matching = sys.sim_runs_matching(&rendered(7)).await.unwrap();
    assert_eq!(matching.len(), 1, "exactly one AMC run: {matching:?}");
    assert_eq!(
        matching[0]["workflow_execution_id"],
        runs[0]["amc_execution_id"]
    );
    sys.cleanup().await;
}
