//! Catch-up after downtime: the only scheduler is stopped for about 10 s while schedules
//! tick every 2 s. The ticks in (stop, restart], from the instants the replicas recorded,
//! are missed: `none` fires none of them, `latest` the last, `all` every one; each one not
//! fired is in the history as `missed`, in the schedule's `missed` and in the restarted
//! scheduler's `schedule_missed_fires_total`. Ticks before and after fire as usual.

use crate::{instant, rows, schedule, ticks, user};
use chrono::{DateTime, Utc};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;
use testkit::{Proc, System, SystemOptions};

#[tokio::test]
async fn missed_ticks_follow_the_catch_up_policy_and_are_all_recorded() {
    let mut sys = System::start(SystemOptions {
        workers: 0,
        ..SystemOptions::default()
    })
    .await
    .expect("system");
    let (c, setup) = user(&sys, "catchup@example.com").await;
    let mut made = Vec::new();
    for policy in ["none", "latest", "all"] {
        let b = schedule(
            &c,
            &setup.workflow_id,
            policy,
            "*/2 * * * * *",
            json!({"overlap": "allow_all", "catch_up": {"policy": policy, "window": "1h"}}),
        )
        .await;
        made.push((
            policy,
            b["id"].as_str().unwrap().to_string(),
            instant(&b["next_run_at"]),
        ));
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    let status = sys.schedulers[0]
        .sigterm_and_wait()
        .await
        .expect("stop scheduler");
    assert!(status.success(), "the scheduler stopped cleanly: {status}");
    tokio::time::sleep(Duration::from_secs(10)).await;
    let mut env = sys.env.clone();
    let health = format!("127.0.0.1:{}", testkit::free_port());
    env.insert("AMP_SCHEDULER_HEALTH_ADDR".into(), health.clone());
    sys.schedulers
        .push(Proc::spawn("scheduler", &[], &env).expect("restart"));
    tokio::time::sleep(Duration::from_secs(5)).await;
    let end = Utc::now();
    tokio::time::sleep(Duration::from_secs(2)).await;

    let db = sys.db.connect().await.expect("db");
    let lives = rows(
        &db,
        "SELECT started_at, stopped_at FROM schedulers ORDER BY started_at",
    )
    .await;
    assert_eq!(lives.len(), 2, "{lives:?}");
    let stop = instant(&lives[0]["stopped_at"]);
    let restart = instant(&lives[1]["started_at"]);
    assert!(
        (restart - stop).num_seconds() >= 9,
        "down from {stop} to {restart}"
    );
    let metrics = sys
        .http
        .get(format!("http://{health}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    for (policy, id, first) in &made {
        let history = rows(
            &db,
            &format!(
                "SELECT scheduled_for AS t, outcome FROM schedule_runs WHERE schedule_id = '{id}' AND scheduled_for <= '{}'",
                end.to_rfc3339()
            ),
        )
        .await;
        let got: BTreeMap<DateTime<Utc>, String> = history
            .iter()
            .map(|h| (instant(&h["t"]), h["outcome"].as_str().unwrap().to_string()))
            .collect();
        assert_eq!(got.len(), history.len(), "{policy}: one entry per tick");
        let down: Vec<_> = ticks(stop + chrono::Duration::microseconds(1), restart, 2);
        assert!(
            down.len() >= 4,
            "{policy}: {} ticks came due while down",
            down.len()
        );
        let mut want: BTreeMap<DateTime<Utc>, String> = BTreeMap::new();
        for t in ticks(*first, end, 2) {
            let outcome = if !down.contains(&t) {
                "started"
            } else {
                match *policy {
                    "none" => "missed",
                    "latest" if Some(&t) == down.last() => "started",
                    "latest" => "missed",
                    _ => "started",
                }
            };
            want.insert(t, outcome.to_string());
        }
        assert_eq!(got, want, "{policy}: the history");
        let missed = want.values().filter(|o| *o == "missed").count();
        let runs = rows(&db, &format!("SELECT scheduled_for FROM executions WHERE schedule_id = '{id}' AND scheduled_for <= '{}'", end.to_rfc3339())).await;
        assert_eq!(runs.len(), want.len() - missed, "{policy}: runs");
        let (s, m) = c.get(&format!("/schedules/{id}/metrics")).await;
        assert_eq!(s, 200, "{m}");
        assert_eq!(m["missed"].as_u64(), Some(missed as u64), "{policy}: {m}");
        let series = format!("schedule_missed_fires_total{{schedule_id=\"{id}\"}} {missed}");
        assert!(
            missed == 0 || metrics.contains(&series),
            "{policy}: {series} in\n{metrics}"
        );
    }
    sys.cleanup().await;
}
