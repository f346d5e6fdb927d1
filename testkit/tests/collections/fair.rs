//! Fair sharing: three collections and a stream of direct runs on one instance with cap 5
//! and reserve 2. The cap holds at every moment; collection windows never hold more than
//! 3 slots; each direct run starts within one slot-free event (no admission pass after
//! the one under way at its commit takes a window ahead of it); every collection
//! finishes, and each makes progress before the first one ends.

use crate::{collection, fast_env, rows, user, wait_ended};
use serde_json::json;
use std::time::Duration;
use testkit::{System, SystemOptions};

#[tokio::test]
async fn collections_and_direct_runs_share_an_instance() {
    let sys = System::start(SystemOptions {
        sim: amc_sim::SimConfig {
            addr: "127.0.0.1:0".parse().unwrap(),
            run_duration: Duration::from_millis(400),
            ..amc_sim::SimConfig::default()
        },
        env: fast_env(),
        ..SystemOptions::default()
    })
    .await
    .expect("system");
    let (c, setup) = user(&sys, "fair@example.com", "amcfair01", 5).await;
    let (s, inst) = c.get(&format!("/instances/{}", setup.instance_id)).await;
    assert_eq!(s, 200);
    assert_eq!(
        inst["collection_reserve"], 2,
        "the default, min(2, cap - 1)"
    );
    let range = json!({"granularity": "day", "start": "2026-03-01", "end": "2026-03-13", "max_concurrency": 3});
    let mut ids = Vec::new();
    for tag in ["a", "b", "c"] {
        let b = collection(&c, &setup.workflow_id, tag, range.clone()).await;
        ids.push(b["id"].as_str().unwrap().to_string());
    }
    let db = sys.db.connect().await.expect("db");
    let instance = &setup.instance_id;
    // Sample the slots while direct runs arrive.
    let sampler = {
        let db = db.clone();
        let instance = instance.clone();
        tokio::spawn(async move {
            let (mut most, mut most_windows) = (0, 0);
            let deadline = tokio::time::Instant::now() + Duration::from_secs(25);
            while tokio::time::Instant::now() < deadline {
                let r = rows(
                    &db,
                    &format!(
                        "SELECT count(*) AS n, count(*) FILTER (WHERE collection_id IS NOT NULL) AS w \
                         FROM executions WHERE instance_id = '{instance}' AND status IN ('submitting', 'running')"
                    ),
                )
                .await;
                most = most.max(r[0]["n"].as_i64().unwrap());
                most_windows = most_windows.max(r[0]["w"].as_i64().unwrap());
                tokio::time::sleep(Duration::from_millis(40)).await;
            }
            (most, most_windows)
        })
    };
    // Each direct run, and the database's clock once the API has answered for it (by then
    // its queued row is committed).
    let mut direct = Vec::new();
    let mut committed_by = Vec::new();
    for n in 0..15 {
        direct.push(
            c.run(
                &setup.workflow_id,
                json!({"tag": format!("direct{n}"), "window_start": "2026-01-01"}),
            )
            .await,
        );
        let now = rows(&db, "SELECT clock_timestamp()::text AS t").await;
        committed_by.push(now[0]["t"].as_str().unwrap().to_string());
        // In bursts of three: more than the reserve, so they need the slots windows free.
        if n % 3 == 2 {
            tokio::time::sleep(Duration::from_millis(900)).await;
        }
    }
    let ran = c.wait_terminal(&direct, Duration::from_secs(60)).await;
    assert!(ran.iter().all(|e| e["status"] == "succeeded"), "{ran:?}");
    let mut ended = Vec::new();
    for id in &ids {
        let done = wait_ended(&c, id, Duration::from_secs(90)).await;
        assert_eq!(done["status"], "succeeded", "{done}");
        ended.push(done);
    }
    let (most, most_windows) = sampler.await.expect("sampler");
    assert!(most <= 5, "{most} runs at once on a cap of 5");
    assert!(
        most_windows <= 3,
        "windows held {most_windows} slots (cap 5 − reserve 2)"
    );
    let stats = sys.sim_stats().await.expect("stats");
    assert!(stats["peak_active"]["amcfair01"].as_u64().unwrap() <= 5);

    // Each direct run starts within one slot-free event: once it is committed, every
    // admission pass takes it before any window. Only the pass already under way (holding
    // the account's lock, its candidates read before the commit) may still admit windows
    // ahead of it: at most one pass, besides the one that admits it. A pass is one
    // transaction: its transition rows share their `created_at`.
    for (d, seen) in direct.iter().zip(&committed_by) {
        let ahead = rows(
            &db,
            &format!(
                "SELECT count(DISTINCT t.created_at) AS passes, count(*) AS windows \
                 FROM executions w JOIN execution_transitions t ON t.execution_id = w.id AND t.to_status = 'submitting' \
                 WHERE w.instance_id = '{instance}' AND w.collection_id IS NOT NULL \
                   AND w.submitting_at > '{seen}' \
                   AND w.submitting_at < (SELECT submitting_at FROM executions WHERE id = '{d}') \
                   AND t.created_at <> (SELECT min(created_at) FROM execution_transitions \
                                        WHERE execution_id = '{d}' AND to_status = 'submitting')"
            ),
        )
        .await;
        assert!(
            ahead[0]["passes"].as_i64().unwrap() <= 1,
            "windows admitted by more than one pass while direct run {d} waited: {}",
            ahead[0]
        );
    }
    // Each collection made progress before the first one ended.
    let first_end = ended
        .iter()
        .map(|e| e["completed_at"].as_str().unwrap().to_string())
        .min()
        .unwrap();
    for id in &ids {
        let before = rows(
            &db,
            &format!(
                "SELECT count(*) AS n FROM executions WHERE collection_id = '{id}' AND status = 'succeeded' \
                 AND completed_at < '{first_end}'"
            ),
        )
        .await;
        assert!(
            before[0]["n"].as_i64().unwrap() >= 1,
            "collection {id} made no progress before the first one ended"
        );
    }
    sys.cleanup().await;
}
