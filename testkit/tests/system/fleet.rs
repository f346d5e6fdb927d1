//! The worker fleet: a SIGTERMed worker with handlers inside slow AMC calls exits within
//! AMP_SHUTDOWN_TIMEOUT and its jobs run on the other worker at once; a SIGKILLed worker's
//! jobs run elsewhere within 10 s; the `workers` table shows both workers.
//!
//! Slow AMC answers come from [`testkit::SlowProxy`] in front of amc-sim.

use crate::{SQL, assert_all_succeeded};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use testkit::{Client, Proc, SlowProxy, System, SystemOptions, wait_until};

/// A worker whose AMC calls go through `proxy`, with its own health address.
fn spawn_worker(sys: &System, proxy: &SlowProxy) -> (Proc, String) {
    sys.spawn_worker_with(&[("AMP_AMC_BASE_URL", &proxy.url)])
}

async fn wait_healthy(sys: &System, url: &str) {
    let ok = wait_until(Duration::from_secs(15), || sys.healthy(url)).await;
    assert!(ok, "worker at {url} did not become healthy");
}

/// Two instances (cap 10 each), 20 runs started; returns their ids.
async fn twenty_runs(c: &mut Client, tag: &str) -> Vec<String> {
    c.register_and_login(&format!("{tag}@example.com")).await;
    let (s, _) = c
        .put(
            "/amazon/connection",
            json!({"refresh_token": format!("Atzr|{tag}")}),
        )
        .await;
    assert_eq!(s, 200);
    let account = c.account().await;
    let wf_a = c
        .workflow(
            &c.instance(&account, &format!("{tag}a"), 10).await,
            SQL,
            json!({}),
        )
        .await;
    let wf_b = c
        .workflow(
            &c.instance(&account, &format!("{tag}b"), 10).await,
            SQL,
            json!({}),
        )
        .await;
    let mut ids = Vec::new();
    for n in 0..20u64 {
        let wf = if n % 2 == 0 { &wf_a } else { &wf_b };
        ids.push(c.run(wf, json!({"n": n})).await);
    }
    ids
}

/// True when no run is still waiting for its submission.
async fn all_submitted(c: &Client, ids: &[String]) -> bool {
    for id in ids {
        let (_, b) = c.get(&format!("/executions/{id}")).await;
        if matches!(b["status"].as_str(), Some("queued" | "submitting")) {
            return false;
        }
    }
    true
}

fn options(env: Vec<(&'static str, String)>) -> SystemOptions {
    let mut o = SystemOptions {
        workers: 0,
        env,
        ..SystemOptions::default()
    };
    o.sim.max_running = 40;
    o
}

async fn worker_rows(sys: &System) -> Vec<(i32, bool, f64, String)> {
    let db = sys.db.connect().await.expect("db");
    use sea_orm::{ConnectionTrait, DbBackend, Statement};
    let rows = db
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT pid, stopped_at IS NOT NULL AS stopped, \
             EXTRACT(EPOCH FROM now() - last_heartbeat_at)::float8 AS age, id FROM workers",
        ))
        .await
        .expect("workers rows");
    rows.iter()
        .map(|r| {
            (
                r.try_get::<i32>("", "pid").expect("pid"),
                r.try_get::<bool>("", "stopped").expect("stopped"),
                r.try_get::<f64>("", "age").expect("age"),
                r.try_get::<String>("", "id").expect("id"),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_hands_running_jobs_to_the_other_worker_at_once() {
    let shutdown = Duration::from_secs(4);
    let sys = System::start(options(vec![
        ("AMP_SHUTDOWN_TIMEOUT", "4s".into()),
        ("AMP_AMC_TIMEOUT", "60s".into()),
    ]))
    .await
    .expect("system");
    let proxy = SlowProxy::start(sys.sim.addr.to_string(), Duration::from_secs(40)).await;
    let mut c = sys.client();
    proxy.set_slow(true);
    let (mut a, a_health) = spawn_worker(&sys, &proxy);
    wait_healthy(&sys, &a_health).await;
    let ids = twenty_runs(&mut c, "fleetterm").await;
    let inside = wait_until(Duration::from_secs(20), || async { proxy.held() >= 20 }).await;
    assert!(
        inside,
        "only {} AMC calls inside the slow proxy",
        proxy.held()
    );
    proxy.set_slow(false);
    let (b, b_health) = spawn_worker(&sys, &proxy);
    wait_healthy(&sys, &b_health).await;
    let a_pid = a.pid().expect("pid") as i32;
    let b_pid = b.pid().expect("pid") as i32;

    let t = Instant::now();
    a.sigterm_and_wait().await.expect("worker a exits");
    let took = t.elapsed();
    assert!(took < shutdown, "worker took {took:?} to stop");
    let exited = Instant::now();
    let moved = wait_until(Duration::from_secs(5), || all_submitted(&c, &ids)).await;
    assert!(
        moved,
        "jobs of the stopped worker did not run on the other within 5 s"
    );
    eprintln!(
        "stopped in {took:?}; jobs taken over {:?} after exit",
        exited.elapsed()
    );
    let runs: Vec<Value> = c.wait_terminal(&ids, Duration::from_secs(30)).await;
    assert_all_succeeded(&runs);
    let stats = sys.sim_stats().await.expect("sim stats");
    assert_eq!(
        stats["creates"].as_u64(),
        Some(20),
        "one AMC run per execution"
    );

    let rows = worker_rows(&sys).await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    let ra = rows.iter().find(|r| r.0 == a_pid).expect("row of a");
    let rb = rows.iter().find(|r| r.0 == b_pid).expect("row of b");
    assert!(ra.1, "stopped worker has stopped_at: {ra:?}");
    assert!(!rb.1 && rb.2 < 5.0, "running worker heartbeats: {rb:?}");
    let mut sys = sys;
    sys.workers.push(b);
    sys.workers.push(a);
    sys.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_worker_jobs_run_elsewhere_within_ten_seconds() {
    let sys = System::start(options(vec![("AMP_AMC_TIMEOUT", "2s".into())]))
        .await
        .expect("system");
    let proxy = SlowProxy::start(sys.sim.addr.to_string(), Duration::from_secs(40)).await;
    let mut c = sys.client();
    proxy.set_slow(true);
    let (mut a, a_health) = spawn_worker(&sys, &proxy);
    wait_healthy(&sys, &a_health).await;
    let (b, b_health) = {
        let ids = twenty_runs(&mut c, "fleetkill").await;
        let inside = wait_until(Duration::from_secs(20), || async { proxy.held() >= 20 }).await;
        assert!(
            inside,
            "only {} AMC calls inside the slow proxy",
            proxy.held()
        );
        proxy.set_slow(false);
        let w = spawn_worker(&sys, &proxy);
        wait_healthy(&sys, &w.1).await;
        a.sigkill().await;
        let killed = Instant::now();
        let moved = wait_until(
            Duration::from_secs(10).saturating_sub(killed.elapsed()),
            || all_submitted(&c, &ids),
        )
        .await;
        assert!(
            moved,
            "jobs of the killed worker did not run elsewhere within 10 s"
        );
        eprintln!("jobs taken over {:?} after SIGKILL", killed.elapsed());
        let runs: Vec<Value> = c.wait_terminal(&ids, Duration::from_secs(30)).await;
        assert_all_succeeded(&runs);
        let stats = sys.sim_stats().await.expect("sim stats");
        assert_eq!(
            stats["creates"].as_u64(),
            Some(20),
            "one AMC run per execution"
        );
        w
    };
    let _ = b_health;
    let mut sys = sys;
    sys.workers.push(b);
    sys.workers.push(a);
    sys.cleanup().await;
}
