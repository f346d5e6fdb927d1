//! `AMP_DATABASE_MAX_CONNECTIONS` caps each process's Postgres pool (RUNBOOK "Scale the
//! workers" and the connection arithmetic of `ops/k8s/worker-scaledobject.yaml` rest on
//! it). An api, a worker and a scheduler, each capped at 3 and named by `application_name`
//! in its database URL, serve 50 runs started at once; `pg_stat_activity` is sampled
//! throughout. Each process holds at most 3 pooled connections plus the one `LISTEN`
//! connection it keeps outside the pool (the api for user changes, the worker for webhook
//! deliveries, the scheduler for schedule changes), and every run succeeds.

use crate::{SQL, assert_each_succeeded_once};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use testkit::{System, SystemOptions, wait_until};

const CAP: i64 = 3;
const RUNS: u64 = 50;
const API: &str = "amp_pool_api";
const WORKER: &str = "amp_pool_worker";
const SCHEDULER: &str = "amp_pool_scheduler";

/// The most connections seen per `(application_name, LISTEN or pool)`.
type Peaks = Arc<Mutex<BTreeMap<(String, bool), i64>>>;

/// `url` with `application_name=name` (sqlx reads it from the URL).
fn named(url: &str, name: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}application_name={name}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_process_holds_at_most_its_max_connections_under_load() {
    let mut opts = SystemOptions {
        workers: 0,
        schedulers: 0,
        ..SystemOptions::default()
    };
    opts.sim.max_running = RUNS as usize;
    let mut sys = System::start(opts).await.expect("system");
    // The api again, capped and named; then a capped, named worker and scheduler (the
    // system's default pool is 8 for every process).
    let url = sys.env["AMP_DATABASE_URL"].clone();
    let cap = CAP.to_string();
    sys.env
        .insert("AMP_DATABASE_MAX_CONNECTIONS".into(), cap.clone());
    sys.env.insert("AMP_DATABASE_URL".into(), named(&url, API));
    sys.restart_api().await.expect("api restarted");
    let worker_url = named(&url, WORKER);
    let (w, health) = sys.spawn_worker_with(&[("AMP_DATABASE_URL", &worker_url)]);
    sys.workers.push(w);
    let scheduler_url = named(&url, SCHEDULER);
    let s = sys
        .spawn_with("scheduler", &[("AMP_DATABASE_URL", &scheduler_url)])
        .expect("scheduler");
    sys.schedulers.push(s);
    assert!(
        wait_until(Duration::from_secs(15), || sys.healthy(&health)).await,
        "worker never healthy"
    );

    let peaks: Peaks = Arc::default();
    let sampling = tokio::spawn(sample(
        sys.db.connect().await.expect("db"),
        sys.db.name.clone(),
        peaks.clone(),
    ));

    let mut c = sys.client();
    c.register_and_login("pool@example.com").await;
    let setup = c
        .first_run_setup("amcrbpool", RUNS as u32, SQL, json!({"n": 0}))
        .await;
    // All at once, so the api's handlers contend for its pool too.
    let mut starts = tokio::task::JoinSet::new();
    for n in 0..RUNS {
        let (c, wf) = (c.clone(), setup.workflow_id.clone());
        starts.spawn(async move { c.run(&wf, json!({"n": n})).await });
    }
    let ids: Vec<String> = starts.join_all().await;
    let runs = c.wait_terminal(&ids, Duration::from_secs(90)).await;
    sampling.abort();
    assert_each_succeeded_once(&sys, &runs).await;

    let peaks = peaks.lock().expect("peaks").clone();
    eprintln!("peak connections (application_name, LISTEN): {peaks:?}");
    let peak = |app: &str, listen: bool| peaks.get(&(app.into(), listen)).copied().unwrap_or(0);
    for app in [API, WORKER, SCHEDULER] {
        assert!(
            peak(app, false) <= CAP,
            "{app} held {} pooled connections; AMP_DATABASE_MAX_CONNECTIONS is {CAP}",
            peak(app, false)
        );
        assert_eq!(peak(app, true), 1, "{app}'s LISTEN connections");
    }
    // The load did fill the worker's pool: the cap, not the load, bounded it.
    assert_eq!(
        peak(WORKER, false),
        CAP,
        "the worker never used its whole pool"
    );
    sys.cleanup().await;
}

/// Every 20 ms until aborted: the test database's connections by `application_name`,
/// pooled or `LISTEN` (a pooled connection never runs `LISTEN`), keeping each peak.
async fn sample(db: sea_orm::DatabaseConnection, database: String, peaks: Peaks) {
    let sql = "SELECT application_name, query LIKE 'LISTEN %' AS listen, count(*) AS n \
               FROM pg_stat_activity WHERE datname = $1 AND application_name IN ($2, $3, $4) \
               GROUP BY 1, 2";
    loop {
        let rows = db
            .query_all_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                sql,
                [
                    database.clone().into(),
                    API.into(),
                    WORKER.into(),
                    SCHEDULER.into(),
                ],
            ))
            .await
            .expect("pg_stat_activity");
        {
            let mut peaks = peaks.lock().expect("peaks");
            for r in rows {
                let app: String = r.try_get("", "application_name").expect("name");
                let listen: bool = r.try_get("", "listen").expect("listen");
                let n: i64 = r.try_get("", "n").expect("n");
                let peak = peaks.entry((app, listen)).or_default();
                *peak = (*peak).max(n);
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
