//! RUNBOOK "Replay dead jobs": the result store breaks (a file where its directory was), so every fetch fails until
//! the queue gives up (`AMP_MAX_ATTEMPTS=2`) and the jobs land in `dead_jobs`. With the
//! store fixed, `migrate replay-dead-jobs` puts them back and every run succeeds. No
//! scheduler runs, so no reconciler can re-drive the runs instead; a second replay finds
//! nothing.

use crate::{assert_each_succeeded_once, start_runs, user};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use std::time::Duration;
use testkit::{System, SystemOptions, wait_until};

const RUNS: u64 = 6;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_jobs_are_replayed_once_the_cause_is_fixed() {
    let store = std::env::temp_dir().join(testkit::unique("amp_blocked_store"));
    std::fs::create_dir_all(&store).expect("store");
    let mut opts = SystemOptions {
        schedulers: 0,
        ..SystemOptions::default()
    };
    opts.env.push(("AMP_JOB_MAX_ATTEMPTS", "2".into()));
    opts.env
        .push(("AMP_RESULTS_URL", store.display().to_string()));
    let sys = System::start(opts).await.expect("system");
    // The store breaks: a file where its directory was.
    std::fs::remove_dir_all(&store).expect("remove store");
    std::fs::write(&store, b"not a directory").expect("blocker");
    let (c, wf) = user(&sys, "deadjobs", 10).await;
    let ids = start_runs(&c, &wf, 0, RUNS).await;

    let db = sys.db.connect().await.expect("db");
    let dead = |db: sea_orm::DatabaseConnection| async move {
        db.query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT count(*) AS n FROM dead_jobs WHERE queue = 'execution.fetch' AND retried_at IS NULL",
        ))
        .await
        .ok()
        .flatten()
        .and_then(|r| r.try_get::<i64>("", "n").ok())
        .unwrap_or(0)
    };
    assert!(
        wait_until(Duration::from_secs(40), || {
            let db = db.clone();
            async move { dead(db).await == RUNS as i64 }
        })
        .await,
        "fetch jobs did not die: {} dead",
        dead(db.clone()).await
    );
    // Nothing moves on its own.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for id in &ids {
        let (_, e) = c.get(&format!("/executions/{id}")).await;
        assert_eq!(e["status"], "fetching", "{e}");
    }

    std::fs::remove_file(&store).expect("fix the store");
    std::fs::create_dir_all(&store).expect("store again");
    let (ok, out, err) = sys
        .migrate(&["replay-dead-jobs", "--queue", "execution.fetch"], &[])
        .await
        .expect("migrate");
    assert!(ok, "replay-dead-jobs failed: {out}{err}");
    assert!(
        out.contains(&format!("put {RUNS} dead job(s) back")),
        "replay said: {out}"
    );

    let runs = c.wait_terminal(&ids, Duration::from_secs(30)).await;
    assert_each_succeeded_once(&sys, &runs).await;
    assert_eq!(dead(db.clone()).await, 0, "dead jobs not marked replayed");
    let (ok, out, _) = sys
        .migrate(&["replay-dead-jobs"], &[])
        .await
        .expect("migrate");
    assert!(
        ok && out.contains("put 0 dead job(s) back"),
        "second replay: {out}"
    );
    let (ok, _, err) = sys
        .migrate(&["replay-dead-jobs", "--limit", "zero"], &[])
        .await
        .expect("migrate");
    assert!(!ok && err.contains("usage"), "a bad --limit: {err}");
    let _ = std::fs::remove_dir_all(&store);
    sys.cleanup().await;
}
