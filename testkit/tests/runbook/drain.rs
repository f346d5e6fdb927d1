//! RUNBOOK "Scale workers" and "Drain one worker": scaling in from three workers to one
//! with SIGTERM (what Kubernetes and KEDA send) while 40 runs are in flight. Each drained
//! worker exits at once (well inside `AMP_SHUTDOWN_TIMEOUT`), marks itself stopped, and
//! every run ends succeeded, submitted to AMC once.

use crate::{assert_each_succeeded_once, start_runs, submitted, user};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use std::time::{Duration, Instant};
use testkit::{System, SystemOptions, wait_until};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_in_with_sigterm_loses_nothing_and_hands_back_at_once() {
    let mut opts = SystemOptions {
        workers: 3,
        ..SystemOptions::default()
    };
    opts.sim.run_duration = Duration::from_millis(1500);
    opts.env.push(("AMP_SHUTDOWN_TIMEOUT", "20s".into()));
    let mut sys = System::start(opts).await.expect("system");
    let (c, wf) = user(&sys, "drain", 20).await;
    let ids = start_runs(&c, &wf, 0, 40).await;
    // Mid-flight: some runs at AMC, polls and fetches queued or delayed.
    assert!(
        wait_until(Duration::from_secs(20), || async {
            submitted(&sys, &c, &ids).await >= 10
        })
        .await,
        "runs never reached AMC"
    );

    for _ in 0..2 {
        let mut w = sys.workers.pop().expect("worker");
        let t = Instant::now();
        let status = w.sigterm_and_wait().await.expect("wait");
        let took = t.elapsed();
        assert!(status.success(), "drained worker exited with {status}");
        assert!(
            took < Duration::from_secs(5),
            "a drained worker took {took:?} to hand back (AMP_SHUTDOWN_TIMEOUT is 20 s)"
        );
    }

    let runs = c.wait_terminal(&ids, Duration::from_secs(90)).await;
    assert_each_succeeded_once(&sys, &runs).await;

    let db = sys.db.connect().await.expect("db");
    let row = db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT count(*) FILTER (WHERE stopped_at IS NOT NULL) AS stopped, \
                    count(*) FILTER (WHERE stopped_at IS NULL) AS alive FROM workers",
        ))
        .await
        .expect("workers")
        .expect("row");
    let stopped: i64 = row.try_get("", "stopped").expect("stopped");
    let alive: i64 = row.try_get("", "alive").expect("alive");
    assert_eq!(
        (stopped, alive),
        (2, 1),
        "the workers table after the scale-in"
    );
    sys.cleanup().await;
}
