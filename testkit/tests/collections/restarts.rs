//! Restarts during a collection: a worker SIGKILLed, a scheduler SIGKILLed and Redis
//! restarted empty. The collection still completes, with exactly one accepted AMC
//! submission per window attempt.

use crate::{collection, fast_env, rows, sim_runs, user, wait_ended, wait_for};
use serde_json::json;
use std::collections::HashMap;
use std::time::Duration;
use testkit::{System, SystemOptions};

#[tokio::test]
async fn a_collection_survives_killed_processes_and_an_empty_redis() {
    let mut env = fast_env();
    env.push(("AMP_RECONCILE_INTERVAL", "300ms".into()));
    let mut sys = System::start(SystemOptions {
        workers: 2,
        private_redis: true,
        sim: amc_sim::SimConfig {
            addr: "127.0.0.1:0".parse().unwrap(),
            run_duration: Duration::from_millis(700),
            ..amc_sim::SimConfig::default()
        },
        env,
        ..SystemOptions::default()
    })
    .await
    .expect("system");
    let (c, setup) = user(&sys, "restarts@example.com", "amcrestart01", 10).await;
    let b = collection(
        &c,
        &setup.workflow_id,
        "restarts",
        json!({"granularity": "day", "start": "2026-02-01", "end": "2026-02-25", "max_concurrency": 4}),
    )
    .await;
    let id = b["id"].as_str().unwrap().to_string();
    let progressed =
        |n: i64| move |b: &serde_json::Value| b["counts"]["succeeded"].as_i64() >= Some(n);
    wait_for(&c, &id, Duration::from_secs(30), progressed(3)).await;
    sys.workers[0].sigkill().await;
    let again = sys.spawn_worker().expect("worker");
    sys.workers.push(again);
    wait_for(&c, &id, Duration::from_secs(30), progressed(8)).await;
    sys.schedulers[0].sigkill().await;
    sys.redis
        .as_mut()
        .expect("private redis")
        .restart()
        .await
        .expect("restart redis empty");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let again = sys.spawn_scheduler().expect("scheduler");
    sys.schedulers.push(again);
    let done = wait_ended(&c, &id, Duration::from_secs(120)).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["counts"]["succeeded"], 24);

    // Each window: one execution (one attempt), one AMC run, submitted once.
    let db = sys.db.connect().await.expect("db");
    let runs = rows(
        &db,
        &format!(
            "SELECT to_char(time_window_start, 'YYYY-MM-DD\"T\"HH24:MI:SS') AS start, amc_execution_id \
             FROM executions WHERE collection_id = '{id}'"
        ),
    )
    .await;
    assert_eq!(runs.len(), 24, "one execution per window");
    let at_amc = sim_runs(&sys, "amcrestart01").await;
    let mut per_window: HashMap<String, usize> = HashMap::new();
    for r in &at_amc {
        assert_eq!(r["submissions"], 1, "a window attempt submitted twice: {r}");
        *per_window
            .entry(r["time_window_start"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    assert_eq!(per_window.len(), 24, "{per_window:?}");
    assert!(per_window.values().all(|n| *n == 1), "{per_window:?}");
    for r in &runs {
        assert_eq!(
            per_window.get(r["start"].as_str().unwrap()),
            Some(&1),
            "{r}"
        );
    }
    sys.cleanup().await;
}
