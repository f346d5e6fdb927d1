//! Fair sharing: three collections and a stream of direct runs on one instance with cap 5
//! and reserve 2. The cap holds at every moment; collection windows never hold more than
//! 3 slots; a direct run never waits while windows take the slots that free up; every
//! collection finishes, and each makes progress before the first one ends.

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
    let mut direct = Vec::new();
    for n in 0..15 {
        direct.push(
            c.run(
                &setup.workflow_id,
                json!({"tag": format!("direct{n}"), "window_start": "2026-01-01"}),
            )
            .await,
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
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

    // No direct run waited while windows took the freed slots: once a direct run is
    // committed, every admission pass takes it first. (Its `created_at` is its batch's
    // read, before the commit; a pass that began before the commit cannot see it, so
    // windows admitted within a second of it are not counted.)
    for d in &direct {
        let ahead = rows(
            &db,
            &format!(
                "SELECT count(*) AS n FROM executions w, executions d WHERE d.id = '{d}' \
                 AND w.collection_id IS NOT NULL AND w.submitting_at > d.created_at + interval '1 second' \
                 AND w.submitting_at < d.submitting_at"
            ),
        )
        .await;
        assert_eq!(
            ahead[0]["n"].as_i64().unwrap(),
            0,
            "windows admitted while direct run {d} waited"
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
