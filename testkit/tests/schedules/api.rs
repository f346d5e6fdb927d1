//! The schedules API: bad input answered 422 naming the field, another user's schedule
//! 404 on every route, DST through `preview?from=`, fired windows equal to the preview's,
//! `{{window_start}}`/`{{window_end}}` filled, triggers now / later / for a past instant,
//! a schedule made from a past run, pages, pause and delete.

use crate::{instant, schedule, user};
use chrono::Utc;
use serde_json::{Value, json};
use std::time::Duration;
use testkit::{System, SystemOptions, wait_until};

fn field(b: &Value) -> String {
    b["errors"][0]["field"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn the_schedules_api_checks_scopes_previews_and_triggers() {
    let sys = System::start(SystemOptions::default())
        .await
        .expect("system");
    let (c, setup) = user(&sys, "api@example.com").await;
    let wf = setup.workflow_id.clone();

    // Bad input: each invalid field is named.
    let base = json!({"workflow_id": wf, "name": "n", "cron": "0 6 * * *", "time_window": {"kind": "previous_day"}});
    for (change, named) in [
        (json!({"cron": "61 * * * *"}), "cron"),
        (json!({"cron": "* * *"}), "cron"),
        (json!({"cron": 5}), "cron"),
        (json!({"cron": "0 0 31 2 *"}), "cron"),
        (json!({"time_zone": "Mars/Olympus"}), "time_zone"),
        (
            json!({"time_window": {"kind": "hourly"}}),
            "time_window.kind",
        ),
        (
            json!({"time_window": {"kind": "rolling"}}),
            "time_window.days",
        ),
        (
            json!({"time_window": {"kind": "rolling", "days": 5000}}),
            "time_window.days",
        ),
        (
            json!({"time_window": {"kind": "previous_week", "week_starts": "funday"}}),
            "time_window.week_starts",
        ),
        (json!({"time_window": "yesterday"}), "time_window"),
        (json!({"overlap": "queue"}), "overlap"),
        (json!({"catch_up": {"policy": "some"}}), "catch_up.policy"),
        (
            json!({"catch_up": {"window": "a while"}}),
            "catch_up.window",
        ),
        (json!({"pause_after_failures": 0}), "pause_after_failures"),
        (json!({"enabled": "yes"}), "enabled"),
        (json!({"name": ""}), "name"),
        (json!({"parameters": {"nope": 1}}), "parameters.nope"),
        (json!({"workflow_id": null}), "workflow_id"),
        (json!({"workflow_id": "not-a-uuid"}), "workflow_id"),
        (
            json!({"from_execution_id": uuid::Uuid::new_v4()}),
            "from_execution_id",
        ),
    ] {
        let mut body = base.clone();
        for (k, v) in change.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (s, b) = c.post("/schedules", body.clone()).await;
        assert_eq!((s, field(&b)), (422, named.to_string()), "{body} → {b}");
        assert!(
            b["detail"].as_str().unwrap_or_default().starts_with(named),
            "{b}"
        );
    }

    // DST in Europe/Berlin: 02:30 falls in the spring gap (fires at 03:00 local) and
    // occurs twice in the fall-back hour (fires at the first).
    let daily = schedule(
        &c,
        &wf,
        "dst",
        "30 2 * * *",
        json!({"time_zone": "Europe/Berlin", "enabled": false}),
    )
    .await;
    let id = daily["id"].as_str().unwrap();
    let (s, p) = c
        .get(&format!(
            "/schedules/{id}/preview?from=2027-03-27T12:00:00Z&count=2"
        ))
        .await;
    assert_eq!(s, 200, "{p}");
    assert_eq!(
        instant(&p["fires"][0]["at"]),
        instant(&json!("2027-03-28T01:00:00Z")),
        "{p}"
    );
    assert_eq!(
        instant(&p["fires"][1]["at"]),
        instant(&json!("2027-03-29T00:30:00Z")),
        "{p}"
    );
    let (_, p) = c
        .get(&format!(
            "/schedules/{id}/preview?from=2027-10-30T12:00:00Z&count=2"
        ))
        .await;
    assert_eq!(
        instant(&p["fires"][0]["at"]),
        instant(&json!("2027-10-31T00:30:00Z")),
        "{p}"
    );
    assert_eq!(
        instant(&p["fires"][1]["at"]),
        instant(&json!("2027-11-01T01:30:00Z")),
        "{p}"
    );
    let hourly = schedule(
        &c,
        &wf,
        "hourly",
        "0 * * * *",
        json!({"time_zone": "Europe/Berlin", "enabled": false}),
    )
    .await;
    let hid = hourly["id"].as_str().unwrap();
    for (from, day_start, day_end, want) in [
        (
            "2027-03-27T22:59:59Z",
            "2027-03-27T23:00:00Z",
            "2027-03-28T22:00:00Z",
            23,
        ),
        (
            "2027-10-30T21:59:59Z",
            "2027-10-30T22:00:00Z",
            "2027-10-31T23:00:00Z",
            25,
        ),
    ] {
        let (_, p) = c
            .get(&format!("/schedules/{hid}/preview?from={from}&count=30"))
            .await;
        let (lo, hi) = (instant(&json!(day_start)), instant(&json!(day_end)));
        let n = p["fires"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| (lo..hi).contains(&instant(&f["at"])))
            .count();
        assert_eq!(
            n, want,
            "hourly fires on the local day starting {day_start}: {p}"
        );
    }
    // A paused schedule has no next tick; preview still answers.
    assert!(daily["next_run_at"].is_null(), "{daily}");

    // Fired windows equal the preview's, and fill the SQL's window placeholders.
    let fired = schedule(
        &c,
        &wf,
        "fired",
        "*/2 * * * * *",
        json!({"time_zone": "America/New_York", "overlap": "allow_all",
               "time_window": {"kind": "previous_week", "week_starts": "sunday", "lag_days": 1}}),
    )
    .await;
    let fid = fired["id"].as_str().unwrap().to_string();
    let db = sys.db.connect().await.expect("db");
    let some = wait_until(Duration::from_secs(15), || {
        let db = db.clone();
        let q = format!("SELECT count(*) AS n FROM executions WHERE schedule_id = '{fid}'");
        async move { crate::rows(&db, &q).await[0]["n"].as_i64().unwrap() >= 2 }
    })
    .await;
    assert!(some, "the schedule did not fire");
    let (s, paused) = c.post(&format!("/schedules/{fid}/pause"), json!({})).await;
    assert_eq!(
        (s, paused["enabled"].as_bool()),
        (200, Some(false)),
        "{paused}"
    );
    let ids = crate::rows(
        &db,
        &format!("SELECT id::text AS id FROM executions WHERE schedule_id = '{fid}'"),
    )
    .await;
    for r in &ids {
        let (_, e) = c
            .get(&format!("/executions/{}", r["id"].as_str().unwrap()))
            .await;
        assert_eq!(e["triggered_by"], "schedule", "{e}");
        assert_eq!(e["schedule_id"].as_str(), Some(fid.as_str()), "{e}");
        let at = instant(&e["scheduled_for"]);
        let from =
            (at - chrono::Duration::seconds(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let (_, p) = c
            .get(&format!("/schedules/{fid}/preview?from={from}&count=1"))
            .await;
        assert_eq!(instant(&p["fires"][0]["at"]), at, "{p}");
        assert_eq!(p["fires"][0]["time_window"], e["time_window"], "{p} vs {e}");
        let (start, end) = (
            &e["time_window"]["start"].as_str().unwrap()[..10],
            &e["time_window"]["end"].as_str().unwrap()[..10],
        );
        assert!(
            e["sql_query"]
                .as_str()
                .unwrap()
                .contains(&format!("BETWEEN '{start}' AND '{end}'")),
            "{e}"
        );
        assert_eq!(e["time_window"]["time_zone"], "America/New_York");
    }

    // Triggers: now (next_run_at untouched), later (waits), and for a past instant.
    let trig = schedule(
        &c,
        &wf,
        "trig",
        "0 6 * * *",
        json!({"time_zone": "Asia/Tokyo"}),
    )
    .await;
    let tid = trig["id"].as_str().unwrap().to_string();
    let (s, e) = c
        .post(&format!("/schedules/{tid}/trigger"), json!({}))
        .await;
    assert_eq!(s, 202, "{e}");
    assert_eq!(
        (
            e["triggered_by"].as_str(),
            e["schedule_id"].as_str(),
            e["scheduled_for"].is_null()
        ),
        (Some("schedule"), Some(tid.as_str()), true),
        "{e}"
    );
    let (_, after) = c.get(&format!("/schedules/{tid}")).await;
    assert_eq!(
        after["next_run_at"], trig["next_run_at"],
        "a trigger leaves next_run_at alone"
    );
    let (s, empty) = c
        .send(
            reqwest::Method::POST,
            &format!("/schedules/{tid}/trigger"),
            None,
            &[],
        )
        .await;
    assert_eq!(s, 202, "a trigger without a body runs now: {empty}");
    let later =
        chrono::Timelike::with_nanosecond(&Utc::now(), 0).unwrap() + chrono::Duration::seconds(4);
    let (s, waiting) = c
        .post(
            &format!("/schedules/{tid}/trigger"),
            json!({"at": later.to_rfc3339()}),
        )
        .await;
    assert_eq!(s, 202, "{waiting}");
    let wid = waiting["id"].as_str().unwrap().to_string();
    let (_, w) = c.get(&format!("/executions/{wid}")).await;
    assert_eq!(
        (w["status"].as_str(), w["waiting_reason"].as_str()),
        (Some("queued"), Some("not_before")),
        "{w}"
    );
    let (s, past) = c
        .post(
            &format!("/schedules/{tid}/trigger"),
            json!({"at": "2026-06-15T06:00:00+09:00"}),
        )
        .await;
    assert_eq!(s, 202, "{past}");
    assert_eq!(
        past["time_window"],
        json!({"start": "2026-06-14T00:00:00", "end": "2026-06-15T00:00:00", "time_zone": "Asia/Tokyo"}),
        "{past}"
    );
    let done = c
        .wait_terminal(
            &[e["id"].as_str().unwrap().to_string(), wid.clone()],
            Duration::from_secs(30),
        )
        .await;
    assert!(done.iter().all(|r| r["status"] == "succeeded"), "{done:?}");
    let submitted = done[1]["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["to_status"] == "submitting")
        .map(|t| instant(&t["at"]))
        .expect("submitted");
    assert!(
        submitted >= later,
        "the later trigger was admitted at {submitted}, before {later}"
    );
    let (_, h) = c.get(&format!("/schedules/{tid}/runs")).await;
    let triggered: Vec<_> = h["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["outcome"] == "triggered")
        .collect();
    assert_eq!(triggered.len(), 4, "{h}");
    assert_eq!(
        instant(&h["items"][0]["scheduled_for"]),
        later,
        "newest first: {h}"
    );
    assert!(
        triggered
            .iter()
            .any(|i| instant(&i["scheduled_for"]) == instant(&json!("2026-06-14T21:00:00Z"))),
        "{h}"
    );
    for (body, named) in [
        (json!({"at": "soon"}), "at"),
        (json!({"at": "2999-01-01T00:00:00Z"}), "at"),
    ] {
        let (s, b) = c.post(&format!("/schedules/{tid}/trigger"), body).await;
        assert_eq!((s, field(&b)), (422, named.to_string()), "{b}");
    }

    // From a past run: its workflow, parameters (less the window's) and window length.
    let run = c
        .run(
            &wf,
            json!({"tag": "from-run", "window_start": "2026-01-01", "window_end": "2026-01-08"}),
        )
        .await;
    let (s, from) = c
        .post(
            "/schedules",
            json!({"from_execution_id": run, "name": "again", "cron": "0 7 * * 1"}),
        )
        .await;
    assert_eq!(s, 201, "{from}");
    assert_eq!(from["workflow_id"].as_str(), Some(wf.as_str()));
    assert_eq!(from["parameters"], json!({"tag": "from-run"}), "{from}");
    assert_eq!(
        (
            from["time_window"]["kind"].as_str(),
            from["time_window"]["days"].as_i64()
        ),
        (Some("rolling"), Some(7)),
        "{from}"
    );

    // Pages, newest first; another user's cursor is refused.
    let (_, page) = c.get("/schedules?limit=2").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 2, "{page}");
    let cursor = page["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_string();
    let (_, all) = c.get("/schedules?limit=500").await;
    assert_eq!(all["items"].as_array().unwrap().len(), 5, "{all}");
    assert!(all["next_cursor"].is_null());
    let (_, rest) = c.get(&format!("/schedules?limit=2&cursor={cursor}")).await;
    assert_eq!(rest["items"][0]["id"], all["items"][2]["id"], "{rest}");

    // Another user sees none of it.
    let mut other = sys.client();
    other.register_and_login("other@example.com").await;
    let (s, b) = other.get(&format!("/schedules?cursor={cursor}")).await;
    assert_eq!((s, field(&b)), (422, "cursor".to_string()), "{b}");
    let (_, mine) = other.get("/schedules").await;
    assert_eq!(mine["items"], json!([]));
    for (method, path) in [
        ("GET", format!("/schedules/{tid}")),
        ("PATCH", format!("/schedules/{tid}")),
        ("DELETE", format!("/schedules/{tid}")),
        ("POST", format!("/schedules/{tid}/pause")),
        ("POST", format!("/schedules/{tid}/resume")),
        ("GET", format!("/schedules/{tid}/preview")),
        ("POST", format!("/schedules/{tid}/trigger")),
        ("GET", format!("/schedules/{tid}/runs")),
        ("GET", format!("/schedules/{tid}/metrics")),
    ] {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let body = (method != "GET" && method != "DELETE").then(|| json!({}));
        let (s, b) = other.send(m, &path, body, &[]).await;
        assert_eq!(s, 404, "{method} {path}: {b}");
    }
    let (s, b) = other
        .post("/schedules", json!({"workflow_id": wf, "name": "n", "cron": "0 6 * * *", "time_window": {"kind": "previous_day"}}))
        .await;
    assert_eq!(s, 404, "another user's workflow: {b}");
    let (s, b) = other
        .post(
            "/schedules",
            json!({"from_execution_id": run, "name": "n", "cron": "0 6 * * *"}),
        )
        .await;
    assert_eq!(s, 404, "another user's run: {b}");

    // PATCH checks its fields too; a cleared auto-pause reads null.
    for (body, named) in [
        (json!({"cron": "every day"}), "cron"),
        (
            json!({"time_window": {"kind": "rolling", "days": 0}}),
            "time_window.days",
        ),
        (json!({"overlap": 3}), "overlap"),
    ] {
        let (s, b) = c.patch(&format!("/schedules/{tid}"), body).await;
        assert_eq!((s, field(&b)), (422, named.to_string()), "{b}");
    }
    let (_, b) = c
        .patch(
            &format!("/schedules/{tid}"),
            json!({"pause_after_failures": 2}),
        )
        .await;
    assert_eq!(b["pause_after_failures"], 2, "{b}");
    let (_, b) = c
        .patch(
            &format!("/schedules/{tid}"),
            json!({"pause_after_failures": null}),
        )
        .await;
    assert!(b["pause_after_failures"].is_null(), "{b}");
    for (q, named) in [
        ("count=0", "count"),
        ("count=101", "count"),
        ("from=yesterday", "from"),
    ] {
        let (s, b) = c.get(&format!("/schedules/{tid}/preview?{q}")).await;
        assert_eq!((s, field(&b)), (422, named.to_string()), "{q}: {b}");
    }
    let (s, b) = c.get(&format!("/schedules/{tid}/runs?cursor=forged")).await;
    assert_eq!((s, field(&b)), (422, "cursor".to_string()), "{b}");

    let (s, _) = c.delete(&format!("/schedules/{tid}")).await;
    assert_eq!(s, 204);
    let (s, _) = c.get(&format!("/schedules/{tid}")).await;
    assert_eq!(s, 404);
    let (_, kept) = c.get(&format!("/executions/{wid}")).await;
    assert!(
        kept["schedule_id"].is_null(),
        "a deleted schedule's runs stay: {kept}"
    );
    sys.cleanup().await;
}
