//! Overlap policies, with AMC runs of 5 s and ticks every 2 s: `skip` records
//! `skipped_overlap` and never has two runs at once; `buffer_one` never has more than one
//! tick waiting, and starts it when the run before ends; `cancel_other` cancels the older
//! run at AMC.

use crate::{instant, rows, schedule, user};
use amc_sim::SimConfig;
use serde_json::{Value, json};
use std::time::Duration;
use testkit::{System, SystemOptions};

fn spans(runs: &[Value]) -> Vec<(chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>)> {
    let mut out: Vec<_> = runs
        .iter()
        .map(|r| {
            let end = if r["completed_at"].is_null() {
                chrono::Utc::now()
            } else {
                instant(&r["completed_at"])
            };
            (instant(&r["created_at"]), end)
        })
        .collect();
    out.sort();
    out
}

fn assert_never_two_at_once(what: &str, runs: &[Value]) {
    let s = spans(runs);
    for w in s.windows(2) {
        assert!(
            w[1].0 >= w[0].1,
            "{what}: a run started at {} while the one before ran until {}",
            w[1].0,
            w[0].1
        );
    }
}

#[tokio::test]
async fn skip_buffer_one_and_cancel_other_with_runs_longer_than_the_interval() {
    let sys = System::start(SystemOptions {
        sim: SimConfig {
            addr: "127.0.0.1:0".parse().unwrap(),
            run_duration: Duration::from_secs(5),
            ..SimConfig::default()
        },
        ..SystemOptions::default()
    })
    .await
    .expect("system");
    let (c, setup) = user(&sys, "overlap@example.com").await;
    let mut ids = Vec::new();
    for policy in ["skip", "buffer_one", "cancel_other"] {
        let b = schedule(
            &c,
            &setup.workflow_id,
            policy,
            "*/2 * * * * *",
            json!({"overlap": policy}),
        )
        .await;
        ids.push(b["id"].as_str().unwrap().to_string());
    }
    let db = sys.db.connect().await.expect("db");
    // While it runs, never more than one tick waits for buffer_one.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(18);
    let mut most_waiting = 0;
    while tokio::time::Instant::now() < deadline {
        let w = rows(&db, &format!("SELECT count(*) AS n FROM schedule_runs WHERE schedule_id = '{}' AND outcome = 'buffered'", ids[1])).await;
        most_waiting = most_waiting.max(w[0]["n"].as_i64().unwrap());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        most_waiting <= 1,
        "buffer_one had {most_waiting} ticks waiting"
    );
    let outcomes = |id: &str| {
        let db = db.clone();
        let q = format!(
            "SELECT outcome, count(*) AS n FROM schedule_runs WHERE schedule_id = '{id}' GROUP BY outcome"
        );
        async move {
            rows(&db, &q)
                .await
                .into_iter()
                .map(|r| {
                    (
                        r["outcome"].as_str().unwrap().to_string(),
                        r["n"].as_i64().unwrap(),
                    )
                })
                .collect::<std::collections::HashMap<_, _>>()
        }
    };
    let runs_of = |id: &str| {
        let db = db.clone();
        let q = format!(
            "SELECT id, status, created_at, completed_at, scheduled_for FROM executions WHERE schedule_id = '{id}'"
        );
        async move { rows(&db, &q).await }
    };

    let skip = outcomes(&ids[0]).await;
    assert!(
        skip.get("skipped_overlap").copied().unwrap_or(0) >= 3,
        "skip: {skip:?}"
    );
    let skip_runs = runs_of(&ids[0]).await;
    assert!(skip_runs.len() >= 2, "skip ran {} times", skip_runs.len());
    assert_never_two_at_once("skip", &skip_runs);

    let buffered = outcomes(&ids[1]).await;
    assert!(
        buffered.get("skipped_overlap").copied().unwrap_or(0) >= 2,
        "buffer_one: {buffered:?}"
    );
    let buffered_runs = runs_of(&ids[1]).await;
    assert_never_two_at_once("buffer_one", &buffered_runs);
    // A buffered tick started late: its run was created well after its tick.
    let late = buffered_runs
        .iter()
        .filter(|r| {
            (instant(&r["created_at"]) - instant(&r["scheduled_for"])).num_milliseconds() > 1000
        })
        .count();
    assert!(
        late >= 1,
        "buffer_one started no tick from the buffer: {buffered_runs:?}"
    );

    let cancel_runs = runs_of(&ids[2]).await;
    let cancelled = cancel_runs
        .iter()
        .filter(|r| r["status"] == "cancelled")
        .count();
    assert!(
        cancelled >= 3,
        "cancel_other cancelled {cancelled} of {}",
        cancel_runs.len()
    );
    let at_amc = sys
        .sim_runs_matching("tag = 'cancel_other'")
        .await
        .expect("sim");
    let amc_cancelled = at_amc.iter().filter(|r| r["status"] == "CANCELLED").count();
    assert!(
        amc_cancelled >= 2,
        "AMC cancelled {amc_cancelled}: {at_amc:?}"
    );
    let history = outcomes(&ids[2]).await;
    assert!(
        history.get("started").copied().unwrap_or(0) >= 6,
        "cancel_other starts every tick: {history:?}"
    );
    assert!(
        !history.contains_key("skipped_overlap"),
        "cancel_other: {history:?}"
    );
    sys.cleanup().await;
}
