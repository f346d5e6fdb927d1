//! RUNBOOK "Scale workers" and "Drain one worker": scaling in from three workers to one
//! with SIGTERM (what Kubernetes and KEDA send).
//!
//! Both tests run with `AMP_CLAIM_IDLE` 60 s and `AMP_RECONCILE_INTERVAL` 10 min, so
//! nothing but the drained worker's own hand-back can move its jobs to the worker that
//! stays within the times asserted: another worker's claim would come a minute after, a
//! reconcile pass ten.

use crate::{assert_each_succeeded_once, start_runs, submitted, user};
use common::jobs::SubmitJob;
use queue::Job;
use redis::AsyncCommands;
use redis::streams::StreamPendingReply;
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use testkit::{Client, Proc, SlowProxy, System, SystemOptions, wait_until};

/// Neither another worker's claim (`AMP_CLAIM_IDLE`) nor the reconciler
/// (`AMP_RECONCILE_INTERVAL`, whose first pass runs at start) moves a job within a test.
fn no_rescue(env: &mut Vec<(&'static str, String)>) {
    env.push(("AMP_CLAIM_IDLE", "60s".into()));
    env.push(("AMP_RECONCILE_INTERVAL", "10m".into()));
}

/// `(stopped, alive)` rows of the `workers` table.
async fn worker_rows(sys: &System) -> (i64, i64) {
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
    (
        row.try_get("", "stopped").expect("stopped"),
        row.try_get("", "alive").expect("alive"),
    )
}

/// Scale-in with runs in flight whose handlers are quick: each drained worker exits at once
/// (far inside `AMP_SHUTDOWN_TIMEOUT`), and every run ends succeeded, submitted to AMC once,
/// within 45 s: before any claim could have rescued a job a drained worker dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_in_with_sigterm_loses_nothing_and_hands_back_at_once() {
    let mut opts = SystemOptions {
        workers: 3,
        ..SystemOptions::default()
    };
    opts.sim.run_duration = Duration::from_millis(1500);
    opts.env.push(("AMP_SHUTDOWN_TIMEOUT", "20s".into()));
    no_rescue(&mut opts.env);
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

    let runs = c.wait_terminal(&ids, Duration::from_secs(45)).await;
    assert_each_succeeded_once(&sys, &runs).await;
    assert_eq!(
        worker_rows(&sys).await,
        (2, 1),
        "the workers table after the scale-in (stopped, alive)"
    );
    sys.cleanup().await;
}

/// How many of the user's runs still wait for their AMC run (queued or submitting): one
/// request, so the 3 s below measure the system, not this check.
async fn unsubmitted(c: &Client) -> usize {
    c.list_all("/executions?status=queued&status=submitting&limit=500")
        .await
        .len()
}

/// SIGTERM; asserts a clean exit within `AMP_SHUTDOWN_TIMEOUT` (plus 1 s); returns when.
async fn drain(mut w: Proc, timeout: Duration) -> Instant {
    let t = Instant::now();
    let status = w.sigterm_and_wait().await.expect("wait");
    let took = t.elapsed();
    assert!(status.success(), "drained worker exited with {status}");
    assert!(
        took < timeout + Duration::from_secs(1),
        "a drained worker took {took:?} to stop (AMP_SHUTDOWN_TIMEOUT {timeout:?})"
    );
    Instant::now()
}

/// Where the jobs of `execution.submit` are: by the consumer (process id) that holds
/// them, and `None` for those no consumer has taken yet (an acknowledged job is deleted).
async fn submit_jobs(sys: &System) -> BTreeMap<Option<u32>, usize> {
    let client = redis::Client::open(sys.redis_url.as_str()).expect("redis url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let stream = queue::QueueKeys::new(&sys.prefix, SubmitJob::QUEUE).stream;
    let len: usize = conn.xlen(&stream).await.expect("XLEN");
    let pending: StreamPendingReply = conn
        .xpending(&stream, queue::GROUP)
        .await
        .expect("XPENDING");
    let mut out = BTreeMap::new();
    let mut held = 0;
    if let StreamPendingReply::Data(d) = pending {
        for c in d.consumers {
            // `{hostname}-{pid}-{random}` (queue::consumer_name).
            let pid = c.name.rsplit('-').nth(1).and_then(|p| p.parse().ok());
            *out.entry(pid).or_default() += c.pending;
            held += c.pending;
        }
    }
    if len > held {
        out.insert(None, len - held);
    }
    out
}

/// The two drained workers hold every run, each handler inside an AMC call that will not
/// answer for a minute (a proxy holds amc-sim's answers; the creates reach amc-sim). On
/// SIGTERM each hands its running jobs back at its shutdown deadline and exits; within 3 s
/// of the exits the worker that stays has taken every one of those jobs, within 10 s every
/// run is past its submission (AMC's runs adopted, not created again), and every run
/// succeeds with one AMC run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drained_worker_hands_its_jobs_to_the_remaining_worker_at_once() {
    const RUNS: u64 = 20;
    let shutdown = Duration::from_secs(4);
    let mut opts = SystemOptions {
        workers: 0,
        ..SystemOptions::default()
    };
    opts.sim.max_running = RUNS as usize;
    opts.env.push(("AMP_SHUTDOWN_TIMEOUT", "4s".into()));
    // A held AMC call stays held (it does not time out and fail over by itself).
    opts.env.push(("AMP_AMC_TIMEOUT", "60s".into()));
    no_rescue(&mut opts.env);
    let mut sys = System::start(opts).await.expect("system");
    let upstream = sys.sim.addr.to_string();
    let proxies = [
        SlowProxy::start(upstream.clone(), Duration::from_secs(60)).await,
        SlowProxy::start(upstream, Duration::from_secs(60)).await,
    ];
    // 10 slots each: the 20 runs' submissions fill both.
    let mut drained = Vec::new();
    for p in &proxies {
        p.set_slow(true);
        let (w, health) = sys.spawn_worker_with(&[
            ("AMP_AMC_BASE_URL", &p.url),
            ("AMP_WORKER_CONCURRENCY", "10"),
        ]);
        assert!(
            wait_until(Duration::from_secs(15), || sys.healthy(&health)).await,
            "worker at {health} never healthy"
        );
        drained.push(w);
    }

    let (c, wf) = user(&sys, "handback", RUNS as u32).await;
    let ids = start_runs(&c, &wf, 0, RUNS).await;
    let all_held = wait_until(Duration::from_secs(20), || async {
        proxies.iter().map(SlowProxy::held).sum::<usize>() >= RUNS as usize
    })
    .await;
    let held: Vec<usize> = proxies.iter().map(SlowProxy::held).collect();
    assert!(
        all_held && held.iter().all(|&n| n > 0),
        "AMC calls held inside each drained worker: {held:?} (want {RUNS} in all, some in each)"
    );
    assert_eq!(
        unsubmitted(&c).await,
        RUNS as usize,
        "every run waits on a drained worker's AMC call"
    );
    let before = submit_jobs(&sys).await;
    for w in &drained {
        let pid = w.pid().expect("pid");
        assert!(
            before.get(&Some(pid)).copied().unwrap_or(0) > 0,
            "drained worker {pid} holds no submit job: {before:?}"
        );
    }

    let (stays, health) = sys.spawn_worker_with(&[]);
    let stays_pid = stays.pid().expect("pid");
    assert!(
        wait_until(Duration::from_secs(15), || sys.healthy(&health)).await,
        "the remaining worker never healthy"
    );
    let (b, a) = (drained.pop().expect("b"), drained.pop().expect("a"));
    let (exit_a, exit_b) = tokio::join!(drain(a, shutdown), drain(b, shutdown));
    let exited = exit_a.max(exit_b);
    // Taken: every submit job is done or held by the remaining worker.
    let taken = wait_until(Duration::from_secs(3), || async {
        submit_jobs(&sys)
            .await
            .keys()
            .all(|k| *k == Some(stays_pid))
    })
    .await;
    let taken_after = exited.elapsed();
    assert!(
        taken,
        "3 s after the drained workers exited the submit jobs are {:?} (by process; None: \
         taken by none), not the remaining worker's ({stays_pid}): they were not handed back \
         (AMP_CLAIM_IDLE is 60 s, AMP_RECONCILE_INTERVAL 10 min)",
        submit_jobs(&sys).await
    );
    let moved = wait_until(Duration::from_secs(10), || async {
        unsubmitted(&c).await == 0
    })
    .await;
    let moved_after = exited.elapsed();
    assert!(
        moved,
        "{} of {RUNS} runs still wait for their submission 10 s after the drained workers exited",
        unsubmitted(&c).await
    );
    eprintln!(
        "submit jobs held before the drain {before:?}; all taken {taken_after:?} and every run \
         past its submission {moved_after:?} after the exits"
    );

    let runs: Vec<Value> = c.wait_terminal(&ids, Duration::from_secs(40)).await;
    assert_each_succeeded_once(&sys, &runs).await;
    let stats = sys.sim_stats().await.expect("sim stats");
    assert_eq!(
        stats["creates"].as_u64(),
        Some(RUNS),
        "one AMC create per run"
    );
    sys.workers.push(stays);
    assert_eq!(
        worker_rows(&sys).await,
        (2, 1),
        "the workers table after the scale-in (stopped, alive)"
    );
    sys.cleanup().await;
}
