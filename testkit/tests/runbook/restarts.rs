//! RUNBOOK "Redis lost or failed over" and "Postgres restarted": with 30 runs in flight
//! (some at AMC, some queued behind the instance's cap), Redis is restarted empty, or a
//! private Postgres cluster is stopped for 3 s and started again. `/readyz` says so while
//! it is down; afterwards nothing needs doing: every run succeeds, submitted to AMC once.

use crate::{assert_each_succeeded_once, readyz, start_runs, submitted, user};
use std::time::Duration;
use testkit::{Client, PgCluster, System, SystemOptions, wait_until};

const RUNS: u64 = 30;

fn options() -> SystemOptions {
    let mut opts = SystemOptions {
        workers: 2,
        ..SystemOptions::default()
    };
    opts.sim.run_duration = Duration::from_millis(1500);
    opts
}

/// A user's `RUNS` runs started, waiting until at least five have reached AMC.
async fn runs_in_flight(sys: &System, tag: &str) -> (Client, Vec<String>) {
    let (c, wf) = user(sys, tag, 10).await;
    let ids = start_runs(&c, &wf, 0, RUNS).await;
    assert!(
        wait_until(Duration::from_secs(20), || async {
            submitted(sys, &c, &ids).await >= 5
        })
        .await,
        "runs never reached AMC"
    );
    (c, ids)
}

/// Waits up to `secs` for the API's `/readyz` to answer `status`.
async fn wait_readyz(sys: &System, api: &str, status: u16, secs: u64, what: &str) {
    assert!(
        wait_until(Duration::from_secs(secs), || async {
            readyz(sys, api).await == status
        })
        .await,
        "{what}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_empty_with_runs_in_flight() {
    let mut sys = System::start(SystemOptions {
        private_redis: true,
        ..options()
    })
    .await
    .expect("system");
    let (c, ids) = runs_in_flight(&sys, "redisgone").await;

    let redis = sys.redis.as_mut().expect("private redis");
    redis.stop();
    let api = sys.api_url.clone();
    wait_readyz(&sys, &api, 503, 5, "/readyz did not report Redis down").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    sys.redis
        .as_mut()
        .expect("private redis")
        .restart()
        .await
        .expect("redis back, empty");
    wait_readyz(&sys, &api, 200, 10, "/readyz did not recover").await;

    let runs = c.wait_terminal(&ids, Duration::from_secs(120)).await;
    assert_each_succeeded_once(&sys, &runs).await;
    sys.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_with_runs_in_flight() {
    let pg = PgCluster::start().await.expect("private postgres");
    let sys = System::start(SystemOptions {
        database_server: Some(pg.url()),
        ..options()
    })
    .await
    .expect("system");
    let (c, ids) = runs_in_flight(&sys, "pgrestart").await;

    pg.stop_server().expect("stop postgres");
    let api = sys.api_url.clone();
    wait_readyz(&sys, &api, 503, 5, "/readyz did not report Postgres down").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    pg.start_server().await.expect("start postgres");
    wait_readyz(&sys, &api, 200, 15, "/readyz did not recover").await;

    let runs = c.wait_terminal(&ids, Duration::from_secs(120)).await;
    assert_each_succeeded_once(&sys, &runs).await;
    sys.cleanup().await;
    drop(pg);
}
