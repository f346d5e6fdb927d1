//! The API's answers: every invalid field is a 422 naming it; a dry run shows the windows
//! and creates nothing; another user's workflow, collection or schedule is 404; a
//! schedule backfill resolves each fire's window as the fire would (overlapping windows
//! are refused); an instance's `collection_reserve` is checked against its cap.

use crate::{SQL, user};
use serde_json::{Value, json};
use testkit::{System, SystemOptions};

#[tokio::test]
async fn bad_input_other_users_and_backfills() {
    let sys = System::start(SystemOptions {
        workers: 0,
        schedulers: 0,
        env: vec![("AMP_COLLECTION_MAX_WINDOWS", "100".into())],
        ..SystemOptions::default()
    })
    .await
    .expect("system");
    let (c, setup) = user(&sys, "api@example.com", "amcapi01", 10).await;
    let wf = setup.workflow_id.clone();
    let today = chrono::Utc::now().date_naive();
    let future = (today + chrono::Days::new(7)).to_string();
    let long_ago = (today - chrono::Days::new(1200)).to_string();
    let cases: Vec<(Value, &str)> = vec![
        (json!({}), "workflow_id"),
        (json!({"workflow_id": "nope"}), "workflow_id"),
        (json!({"workflow_id": wf, "start": "2026-01-05"}), "end"),
        (json!({"workflow_id": wf, "end": "2026-01-05"}), "start"),
        (
            json!({"workflow_id": wf, "start": "2026-02-02", "end": "2026-01-05"}),
            "end",
        ),
        (
            json!({"workflow_id": wf, "start": "2026-01-05", "end": future}),
            "end",
        ),
        (
            json!({"workflow_id": wf, "start": "2026-01-06", "end": "2026-02-02"}),
            "start",
        ),
        (
            json!({"workflow_id": wf, "start": "2026-01-05", "end": "2026-02-03"}),
            "end",
        ),
        (
            json!({"workflow_id": wf, "granularity": "month", "start": "2026-01-02", "end": "2026-03-01"}),
            "start",
        ),
        (
            json!({"workflow_id": wf, "granularity": "day", "start": "2025-01-01", "end": "2025-06-01"}),
            "start",
        ),
        (
            json!({"workflow_id": wf, "granularity": "day", "start": long_ago, "end": "2024-01-01"}),
            "start",
        ),
        (
            json!({"workflow_id": wf, "granularity": "hourly"}),
            "granularity",
        ),
        (
            json!({"workflow_id": wf, "granularity": "schedule"}),
            "granularity",
        ),
        (
            json!({"workflow_id": wf, "week_starts": "someday"}),
            "week_starts",
        ),
        (
            json!({"workflow_id": wf, "time_zone": "Mars/Olympus"}),
            "time_zone",
        ),
        (
            json!({"workflow_id": wf, "start": "2026-13-01", "end": "2026-02-02"}),
            "start",
        ),
        (
            json!({"workflow_id": wf, "max_concurrency": 0}),
            "max_concurrency",
        ),
        (
            json!({"workflow_id": wf, "max_attempts": 0}),
            "max_attempts",
        ),
        (json!({"workflow_id": wf, "parameters": [1]}), "parameters"),
        (
            json!({"workflow_id": wf, "parameters": {"tag": "a\u{0}b"}}),
            "parameters",
        ),
        (json!({"workflow_id": wf, "name": " "}), "name"),
    ];
    for (body, field) in cases {
        let (s, b) = c.post("/collections", body.clone()).await;
        assert_eq!(s, 422, "{body} → {b}");
        assert_eq!(b["errors"][0]["field"], field, "{body} → {b}");
    }
    // A placeholder without a value names it.
    let other_sql = c
        .workflow(
            &setup.instance_id,
            "SELECT 1 FROM t WHERE x = {{needed}}",
            json!({}),
        )
        .await;
    let (s, b) = c
        .post("/collections", json!({"workflow_id": other_sql}))
        .await;
    assert_eq!(s, 422, "{b}");
    assert_eq!(b["errors"][0]["field"], "parameters.needed", "{b}");

    // A dry run of months: 12 calendar months ending at least 14 days ago, nothing made.
    let (s, dry) = c
        .post(
            "/collections?dry_run=true",
            json!({"workflow_id": wf, "granularity": "month", "time_zone": "Europe/Berlin"}),
        )
        .await;
    assert_eq!(s, 200, "{dry}");
    let w = dry["windows"].as_array().unwrap();
    assert_eq!(w.len(), 12);
    assert!(
        w.iter()
            .all(|x| x["start"].as_str().unwrap().ends_with("-01T00:00:00"))
    );
    let (_, list) = c.get("/collections").await;
    assert_eq!(list["items"], json!([]));

    // A real one (no worker runs it here), seen by its owner only.
    let (s, mine) = c
        .post(
            "/collections",
            json!({"workflow_id": wf, "granularity": "day", "start": "2026-01-01", "end": "2026-01-04",
                   "parameters": {"tag": "api"}}),
        )
        .await;
    assert_eq!(s, 201, "{mine}");
    assert_eq!(mine["total"], 3);
    assert_eq!(mine["counts"]["queued"], 3, "{mine}");
    let id = mine["id"].as_str().unwrap();
    let (mut other, _) = (sys.client(), ());
    other.register_and_login("other@example.com").await;
    for path in [
        format!("/collections/{id}"),
        format!("/collections/{id}/windows"),
        format!("/collections/{id}/windows?status=queued"),
        format!("/collections/{id}/results"),
    ] {
        let (s, b) = other.get(&path).await;
        assert_eq!(s, 404, "{path}: {b}");
    }
    for action in ["pause", "resume", "cancel", "retry-failed"] {
        let (s, b) = other
            .post(&format!("/collections/{id}/{action}"), json!({}))
            .await;
        assert_eq!(s, 404, "{action}: {b}");
    }
    let (s, b) = other.post("/collections", json!({"workflow_id": wf})).await;
    assert_eq!(s, 404, "another user's workflow: {b}");
    let (_, theirs) = other.get("/collections").await;
    assert_eq!(theirs["items"], json!([]));
    let (s, b) = c
        .get(&format!("/collections/{id}/windows?cursor=bogus"))
        .await;
    assert_eq!(s, 422, "{b}");
    // The windows filtered by the status they show: no run yet, so all queued.
    let (s, b) = c
        .get(&format!("/collections/{id}/windows?status=bogus"))
        .await;
    assert_eq!(s, 422, "{b}");
    assert_eq!(b["errors"][0]["field"], "status", "{b}");
    for (status, n) in [("queued", 3), ("running", 0), ("failed", 0)] {
        let (s, b) = c
            .get(&format!("/collections/{id}/windows?status={status}"))
            .await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(b["items"].as_array().unwrap().len(), n, "{status}: {b}");
    }
    assert_eq!(mine["failed_windows"], json!([]), "{mine}");
    assert_eq!(mine["status_reason"], Value::Null, "{mine}");

    // Backfill a daily schedule over ten days: its fires' windows, as preview resolves them.
    let (s, sched) = c
        .post(
            "/schedules",
            json!({"workflow_id": wf, "name": "daily", "cron": "0 6 * * *", "time_zone": "America/New_York",
                   "time_window": {"kind": "previous_day"}, "parameters": {"tag": "bf"}}),
        )
        .await;
    assert_eq!(s, 201, "{sched}");
    let sid = sched["id"].as_str().unwrap();
    let (s, bf) = c
        .post(
            &format!("/schedules/{sid}/backfill"),
            json!({"start": "2026-03-01", "end": "2026-03-11"}),
        )
        .await;
    assert_eq!(s, 201, "{bf}");
    assert_eq!(bf["total"], 10);
    assert_eq!(bf["granularity"], "schedule");
    assert_eq!(bf["schedule_id"], sid);
    let (_, ws) = c
        .get(&format!(
            "/collections/{}/windows?limit=500",
            bf["id"].as_str().unwrap()
        ))
        .await;
    let (_, pv) = c
        .get(&format!(
            "/schedules/{sid}/preview?count=10&from=2026-03-01T00:00:00-05:00"
        ))
        .await;
    for (w, f) in ws["items"]
        .as_array()
        .unwrap()
        .iter()
        .zip(pv["fires"].as_array().unwrap())
    {
        assert_eq!(w["start"], f["time_window"]["start"], "{w} vs {f}");
        assert_eq!(w["end"], f["time_window"]["end"]);
    }
    // A rolling week fired daily overlaps itself: refused.
    let (_, weekly) = c
        .post(
            "/schedules",
            json!({"workflow_id": wf, "name": "rolling", "cron": "0 6 * * *",
                   "time_window": {"kind": "rolling", "days": 7}, "parameters": {"tag": "bf"}}),
        )
        .await;
    let (s, b) = c
        .post(
            &format!("/schedules/{}/backfill", weekly["id"].as_str().unwrap()),
            json!({"start": "2026-03-01", "end": "2026-03-11"}),
        )
        .await;
    assert_eq!(s, 422, "{b}");
    assert_eq!(b["errors"][0]["field"], "start");
    let (s, b) = c
        .post(
            &format!("/schedules/{sid}/backfill"),
            json!({"start": "2026-03-11", "end": "2026-03-01"}),
        )
        .await;
    assert_eq!(
        (s, b["errors"][0]["field"].as_str()),
        (422, Some("end")),
        "{b}"
    );
    let (s, b) = other
        .post(
            &format!("/schedules/{sid}/backfill"),
            json!({"start": "2026-03-01", "end": "2026-03-11"}),
        )
        .await;
    assert_eq!(s, 404, "{b}");

    // The instance's reserve: below the cap, and the cap stays above it.
    let (s, b) = c
        .post(
            "/instances",
            json!({"name": "r", "account_id": setup.account_id, "amc_instance_id": "amcapi02",
                   "max_concurrent_executions": 3, "collection_reserve": 3}),
        )
        .await;
    assert_eq!(
        (s, b["errors"][0]["field"].as_str()),
        (422, Some("collection_reserve")),
        "{b}"
    );
    let inst = &setup.instance_id;
    let (s, b) = c
        .patch(
            &format!("/instances/{inst}"),
            json!({"collection_reserve": 4}),
        )
        .await;
    assert_eq!((s, b["collection_reserve"].as_i64()), (200, Some(4)), "{b}");
    let (s, b) = c
        .patch(
            &format!("/instances/{inst}"),
            json!({"max_concurrent_executions": 4}),
        )
        .await;
    assert_eq!(
        (s, b["errors"][0]["field"].as_str()),
        (422, Some("max_concurrent_executions")),
        "{b}"
    );
    let (s, b) = c
        .patch(
            &format!("/instances/{inst}"),
            json!({"collection_reserve": null}),
        )
        .await;
    assert_eq!(
        (s, b["collection_reserve"].as_i64()),
        (200, Some(2)),
        "back to the default: {b}"
    );
    let _ = SQL;
    sys.cleanup().await;
}
