//! Which version a run gets: a collection's windows all run the version it started with,
//! even when the workflow is edited meanwhile; a schedule's fires run the latest version
//! at each fire, unless the schedule pins one.

use crate::{SQL_V2, user};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};
use std::time::Duration;
use testkit::{System, SystemOptions, wait_until};

/// `(origin, version, sql)` of every run.
async fn runs(sys: &System) -> Vec<(String, i64, String)> {
    let db = sys.db.connect().await.expect("db");
    let rows = db
        .query_all_raw(Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT to_jsonb(q) AS row FROM (SELECT coalesce(s.name, e.triggered_by) AS origin, \
               e.workflow_version, e.sql_query FROM executions e \
               LEFT JOIN schedules s ON s.id = e.schedule_id) q",
        ))
        .await
        .expect("runs");
    rows.into_iter()
        .map(|r| {
            let v: Value = r.try_get("", "row").expect("row");
            (
                v["origin"].as_str().unwrap_or_default().to_string(),
                v["workflow_version"].as_i64().unwrap_or_default(),
                v["sql_query"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn collections_pin_their_version_and_schedules_follow_the_latest() {
    let sys = System::start(SystemOptions {
        env: vec![
            ("AMP_POLL_MIN", "100ms".into()),
            ("AMP_POLL_MAX", "200ms".into()),
        ],
        ..SystemOptions::default()
    })
    .await
    .expect("system");
    let (c, setup) = user(&sys, "pin@example.com").await;
    let wf = setup.workflow_id.clone();

    // A collection of three days, one at a time, started on version 1.
    let (s, coll) = c
        .post(
            "/collections",
            json!({"workflow_id": wf, "start": "2026-01-05", "end": "2026-01-08",
            "granularity": "day", "max_concurrency": 1}),
        )
        .await;
    assert_eq!(s, 201, "{coll}");
    assert_eq!(coll["workflow_version"], 1);
    // Two schedules firing every second: one follows the latest, one pins version 1.
    for (name, pin) in [("latest", Value::Null), ("pinned", json!(1))] {
        let (s, b) = c
            .post(
                "/schedules",
                json!({"workflow_id": wf, "name": name, "cron": "* * * * * *",
                "time_window": {"kind": "previous_day"}, "overlap": "allow_all",
                "workflow_version": pin}),
            )
            .await;
        assert_eq!(s, 201, "{b}");
    }
    let (s, b) = c
        .patch(&format!("/workflows/{wf}"), json!({"sql_query": SQL_V2}))
        .await;
    assert_eq!((s, b["version"].clone()), (200, json!(2)), "{b}");

    let coll_id = coll["id"].as_str().unwrap().to_string();
    let done = wait_until(Duration::from_secs(30), || {
        let (c, id, sys) = (&c, &coll_id, &sys);
        async move {
            let (_, b) = c.get(&format!("/collections/{id}")).await;
            let latest_v2 = runs(sys)
                .await
                .iter()
                .any(|(o, v, _)| o == "latest" && *v == 2);
            !b["completed_at"].is_null() && latest_v2
        }
    })
    .await;
    assert!(
        done,
        "the collection did not end or the schedule never ran version 2"
    );
    let (_, b) = c.get(&format!("/collections/{coll_id}")).await;
    assert_eq!(b["status"], "succeeded", "{b}");
    let all = runs(&sys).await;
    let of = |origin: &'static str| all.iter().filter(move |(o, _, _)| o == origin);
    assert_eq!(of("collection").count(), 3, "{all:?}");
    for (_, v, sql) in of("collection").chain(of("pinned")) {
        assert_eq!(*v, 1, "{all:?}");
        assert!(sql.contains("1 AS v"), "{sql}");
    }
    assert!(of("pinned").count() > 0, "{all:?}");
    for (_, v, sql) in of("latest").filter(|(_, v, _)| *v == 2) {
        assert!(sql.contains("2 AS v") && *v == 2, "{sql}");
    }
    sys.cleanup().await;
}
