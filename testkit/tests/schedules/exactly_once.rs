//! Exactly once across replicas: three schedulers, 300 schedules firing every 2 s with
//! `allow_all`, for 60 s, no worker. One scheduler is SIGKILLed and restarted mid-run, and
//! the cron of 50 schedules changes mid-run. Every expected tick has exactly one run and
//! one `started` history entry; none is missing, none is doubled, none is `missed`.

use crate::{instant, rows, schedule, ticks, user};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;
use testkit::{System, SystemOptions};

const SCHEDULES: usize = 300;
const EDITED: usize = 50;

#[tokio::test]
async fn three_replicas_fire_every_tick_once_through_a_kill_and_edits() {
    let mut sys = System::start(SystemOptions {
        workers: 0,
        schedulers: 3,
        env: vec![("AMP_RECONCILE_INTERVAL", "1s".into())],
        ..SystemOptions::default()
    })
    .await
    .expect("system");
    let (c, setup) = user(&sys, "replicas@example.com").await;
    let mut first: HashMap<String, DateTime<Utc>> = HashMap::new();
    let mut ids = Vec::new();
    for i in 0..SCHEDULES {
        let b = schedule(
            &c,
            &setup.workflow_id,
            &format!("s{i}"),
            "*/2 * * * * *",
            json!({"overlap": "allow_all"}),
        )
        .await;
        let id = b["id"].as_str().unwrap().to_string();
        first.insert(id.clone(), instant(&b["next_run_at"]));
        ids.push(id);
    }
    tokio::time::sleep(Duration::from_secs(15)).await;
    // One replica dies without a word, and comes back a little later.
    sys.schedulers[0].sigkill().await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let again = sys.spawn_scheduler().expect("restart scheduler");
    sys.schedulers.push(again);
    tokio::time::sleep(Duration::from_secs(10)).await;
    // 50 schedules move to every 3 s; the edit's instant is the row's `updated_at`.
    let mut edited: HashMap<String, DateTime<Utc>> = HashMap::new();
    for id in ids.iter().take(EDITED) {
        let (s, b) = c
            .patch(
                &format!("/schedules/{id}"),
                json!({"cron": "*/3 * * * * *"}),
            )
            .await;
        assert_eq!(s, 200, "edit: {b}");
        edited.insert(id.clone(), instant(&b["updated_at"]));
    }
    tokio::time::sleep(Duration::from_secs(30)).await;
    let end = Utc::now();
    // Fires up to `end` land within moments.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let db = sys.db.connect().await.expect("db");
    let runs = rows(
        &db,
        &format!(
            "SELECT schedule_id::text AS s, scheduled_for AS t FROM executions \
             WHERE schedule_id IS NOT NULL AND scheduled_for <= '{}'",
            end.to_rfc3339()
        ),
    )
    .await;
    let history = rows(
        &db,
        &format!(
            "SELECT schedule_id::text AS s, scheduled_for AS t, outcome FROM schedule_runs \
             WHERE scheduled_for <= '{}'",
            end.to_rfc3339()
        ),
    )
    .await;
    let group = |rows: &[Value]| {
        let mut m: HashMap<String, Vec<DateTime<Utc>>> = HashMap::new();
        for r in rows {
            m.entry(r["s"].as_str().unwrap().to_string())
                .or_default()
                .push(instant(&r["t"]));
        }
        m
    };
    let (by_schedule, history_by) = (group(&runs), group(&history));
    assert!(
        history.iter().all(|h| h["outcome"] == "started"),
        "every tick was started (none missed or skipped): {:?}",
        history
            .iter()
            .filter(|h| h["outcome"] != "started")
            .take(5)
            .collect::<Vec<_>>()
    );
    let mut total = 0;
    for id in &ids {
        let expected: Vec<DateTime<Utc>> = match edited.get(id) {
            None => ticks(first[id], end, 2),
            Some(at) => {
                let mut t = ticks(first[id], *at, 2);
                t.extend(ticks(*at + chrono::Duration::microseconds(1), end, 3));
                t
            }
        };
        for (what, got) in [
            ("runs", by_schedule.get(id)),
            ("history", history_by.get(id)),
        ] {
            let mut got = got.cloned().unwrap_or_default();
            got.sort();
            let unique: BTreeSet<_> = got.iter().collect();
            assert_eq!(
                unique.len(),
                got.len(),
                "{what} of {id}: a tick fired twice"
            );
            let want: BTreeSet<_> = expected.iter().collect();
            let missing: Vec<_> = want.difference(&unique).take(3).collect();
            let extra: Vec<_> = unique.difference(&want).take(3).collect();
            assert!(
                missing.is_empty() && extra.is_empty(),
                "{what} of {id}: missing {missing:?}, unexpected {extra:?}"
            );
        }
        total += expected.len();
    }
    assert!(total > SCHEDULES * 25, "{total} ticks over 60 s");
    // The killed replica's row stays without a stop; the others are alive.
    let replicas = rows(&db, "SELECT id, stopped_at FROM schedulers").await;
    assert_eq!(replicas.len(), 4, "{replicas:?}");
    sys.cleanup().await;
}
