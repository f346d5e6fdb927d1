//! One 52-week collection, four windows at a time: amc-sim never sees more than four of
//! its runs at once, windows are admitted and submitted oldest first, every window has
//! exactly one succeeded execution, the windows tile the range, the combined results hold
//! every window's rows with its `window_start`, and `collection.completed` is recorded
//! with the counts.

use crate::{collection, counts, fast_env, only_event, rows, user, wait_ended, windows};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use testkit::{System, SystemOptions};

#[tokio::test]
async fn a_year_of_weeks_runs_four_at_a_time_and_combines_its_results() {
    let sys = System::start(SystemOptions {
        sim: amc_sim::SimConfig {
            addr: "127.0.0.1:0".parse().unwrap(),
            run_duration: Duration::from_millis(150),
            ..amc_sim::SimConfig::default()
        },
        env: fast_env(),
        ..SystemOptions::default()
    })
    .await
    .expect("system");
    let (c, setup) = user(&sys, "one@example.com", "amcone01", 10).await;
    let b = collection(
        &c,
        &setup.workflow_id,
        "one",
        serde_json::json!({"max_concurrency": 4}),
    )
    .await;
    assert_eq!(b["total"], 52, "{b}");
    assert_eq!(b["granularity"], "week");
    assert_eq!(b["max_concurrency"], 4);
    let id = b["id"].as_str().unwrap().to_string();
    let done = wait_ended(&c, &id, Duration::from_secs(150)).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["counts"]["succeeded"], 52, "{done}");
    assert!(done["estimated_completion_at"].is_null());

    let stats = sys.sim_stats().await.expect("stats");
    let peak = stats["peak_active"]["amcone01"].as_u64().unwrap();
    assert!(peak <= 4, "amc-sim saw {peak} runs at once");
    assert!(peak >= 2, "windows ran concurrently (peak {peak})");

    // The windows tile the range: each starts where the one before ended.
    let w = windows(&c, &id, 20).await;
    assert_eq!(w.len(), 52);
    assert_eq!(
        w[0]["start"],
        format!("{}T00:00:00", b["start"].as_str().unwrap())
    );
    assert_eq!(
        w[51]["end"],
        format!("{}T00:00:00", b["end"].as_str().unwrap())
    );
    for (i, pair) in w.windows(2).enumerate() {
        assert_eq!(pair[0]["end"], pair[1]["start"], "gap or overlap at {i}");
        assert_eq!(pair[0]["index"], i);
    }
    assert!(
        w.iter()
            .all(|x| x["status"] == "succeeded" && x["attempts"] == 1)
    );

    // Exactly one succeeded execution per window, each a collection run.
    let db = sys.db.connect().await.expect("db");
    let runs = rows(
        &db,
        &format!(
            "SELECT time_window_start::text AS start, status, triggered_by, row_count FROM executions \
             WHERE collection_id = '{id}'"
        ),
    )
    .await;
    assert_eq!(runs.len(), 52, "one execution per window");
    let starts: BTreeSet<&str> = runs.iter().map(|r| r["start"].as_str().unwrap()).collect();
    assert_eq!(starts.len(), 52);
    assert!(
        runs.iter()
            .all(|r| r["status"] == "succeeded" && r["triggered_by"] == "collection")
    );
    let mut per_window: BTreeMap<String, u64> = BTreeMap::new();
    for r in &runs {
        let start = r["start"].as_str().unwrap().replace(' ', "T");
        per_window.insert(start, r["row_count"].as_u64().unwrap());
    }
    let total_rows: u64 = per_window.values().sum();

    // Oldest first: the n-th window admitted is window n, give or take the windows that
    // run beside it (fewer than max_concurrency).
    let admitted = rows(
        &db,
        &format!(
            "SELECT collection_window AS w FROM executions WHERE collection_id = '{id}' \
             ORDER BY submitting_at, collection_window"
        ),
    )
    .await;
    assert_eq!(admitted.len(), 52);
    for (n, r) in admitted.iter().enumerate() {
        let w = r["w"].as_i64().expect("a window") as usize;
        assert!(
            n.abs_diff(w) < 4,
            "window {w} was the {n}th admitted: {admitted:?}"
        );
    }
    // And AMC received them in that order (amc-sim lists runs as they were created).
    let sent: Vec<usize> = stats["runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["instance_id"] == "amcone01")
        .map(|r| {
            w.iter()
                .position(|x| x["start"] == r["time_window_start"])
                .expect("a window's run")
        })
        .collect();
    assert_eq!(sent.len(), 52);
    for (n, w) in sent.iter().enumerate() {
        assert!(
            n.abs_diff(*w) < 4,
            "window {w} was the {n}th sent: {sent:?}"
        );
    }

    // Combined JSON pages: every window's rows, labelled with its start, in window order.
    let mut got: Vec<Vec<Value>> = Vec::new();
    let mut cursor = String::new();
    let mut columns;
    loop {
        let (s, page) = c
            .get(&format!(
                "/collections/{id}/results?limit=7&cursor={cursor}"
            ))
            .await;
        assert_eq!(s, 200, "{page}");
        columns = page["columns"].clone();
        got.extend(
            page["rows"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_array().unwrap().clone()),
        );
        match page["next_cursor"].as_str() {
            Some(n) => cursor = n.to_string(),
            None => break,
        }
    }
    // amc-sim's results have their own columns; the window's comes first.
    assert_eq!(columns[0], "window_start", "{columns}");
    assert_eq!(columns[1], "campaign", "{columns}");
    assert_eq!(got.len() as u64, total_rows);
    let mut counted: BTreeMap<String, u64> = BTreeMap::new();
    for r in &got {
        *counted
            .entry(r[0].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    assert_eq!(counted, per_window, "rows per window_start");
    let labels: Vec<&str> = got.iter().map(|r| r[0].as_str().unwrap()).collect();
    assert!(labels.windows(2).all(|p| p[0] <= p[1]), "window order");
    // A tampered cursor is refused.
    let (s, e) = c
        .get(&format!("/collections/{id}/results?cursor=AAAA"))
        .await;
    assert_eq!(s, 422, "{e}");

    // The CSV: the same rows, streamed.
    let csv = sys
        .http
        .get(format!("{}/collections/{id}/results?format=csv", c.base))
        .bearer_auth(c.token.as_deref().unwrap())
        .send()
        .await
        .expect("csv")
        .text()
        .await
        .expect("csv body");
    let mut lines = csv.lines();
    let header = columns
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect::<Vec<_>>()
        .join(",");
    assert_eq!(lines.next(), Some(header.as_str()));
    assert_eq!(lines.count() as u64, total_rows);

    let payload = only_event(&db, &id, "collection.completed").await;
    assert_eq!(payload["status"], "succeeded", "{payload}");
    assert_eq!(payload["counts"], counts(0, 0, 52, 0, 0), "{payload}");
    sys.cleanup().await;
}
