//! The workflow API: edits make immutable versions, runs name a version, the default
//! window, validate, tags, 404 for another user's ids, 422 naming the field, and delete
//! refused (409) while runs, enabled schedules or running collections use the workflow.

use crate::{SQL_V1, SQL_V2, field, user};
use serde_json::json;
use testkit::{System, SystemOptions};

#[tokio::test]
async fn workflows_are_versioned_validated_tagged_and_deleted_only_when_unused() {
    // No worker: runs stay queued (in use) until cancelled.
    let sys = System::start(SystemOptions {
        workers: 0,
        schedulers: 0,
        ..SystemOptions::default()
    })
    .await
    .expect("system");
    let (c, setup) = user(&sys, "wf@example.com").await;
    let (other, _) = user(&sys, "other@example.com").await;
    let wf = setup.workflow_id.clone();

    // Create with tags; the filter finds it.
    let (s, tagged) = c
        .post(
            "/workflows",
            json!({"name": "tagged", "instance_id": setup.instance_id, "sql_query": SQL_V1,
                   "parameters": {"tag": "x"}, "tags": ["brand", "weekly"]}),
        )
        .await;
    assert_eq!(s, 201, "{tagged}");
    assert_eq!(tagged["version"], 1);
    assert_eq!(tagged["tags"], json!(["brand", "weekly"]));
    let (s, list) = c.get("/workflows?tag=weekly").await;
    assert_eq!(s, 200);
    let ids: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [tagged["id"].as_str().unwrap()]);

    // Edits: a rename keeps the version, a new SQL makes version 2, new defaults version 3.
    let (s, b) = c
        .patch(&format!("/workflows/{wf}"), json!({"name": "renamed"}))
        .await;
    assert_eq!((s, b["version"].clone()), (200, json!(1)), "{b}");
    let (s, b) = c
        .patch(&format!("/workflows/{wf}"), json!({"sql_query": SQL_V2}))
        .await;
    assert_eq!((s, b["version"].clone()), (200, json!(2)), "{b}");
    let (s, b) = c
        .patch(
            &format!("/workflows/{wf}"),
            json!({"parameters": {"tag": "v3"}, "tags": ["t"]}),
        )
        .await;
    assert_eq!(
        (s, b["version"].clone(), b["tags"].clone()),
        (200, json!(3), json!(["t"])),
        "{b}"
    );
    let (s, b) = c
        .patch(
            &format!("/workflows/{wf}"),
            json!({"parameters": {"nope": 1}}),
        )
        .await;
    assert_eq!((s, field(&b)), (422, "parameters.nope".into()), "{b}");

    // Versions: newest first, paged; each as it was.
    let (s, page) = c.get(&format!("/workflows/{wf}/versions?limit=2")).await;
    assert_eq!(s, 200, "{page}");
    let versions: Vec<i64> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_i64().unwrap())
        .collect();
    assert_eq!(versions, [3, 2]);
    let cursor = page["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_string();
    let (s, page) = c
        .get(&format!("/workflows/{wf}/versions?limit=2&cursor={cursor}"))
        .await;
    assert_eq!(s, 200, "{page}");
    assert_eq!(page["items"][0]["version"], 1);
    assert_eq!(page["items"][0]["sql_query"], SQL_V1);
    assert!(page["next_cursor"].is_null());
    let (s, v2) = c.get(&format!("/workflows/{wf}/versions/2")).await;
    assert_eq!((s, v2["sql_query"].as_str()), (200, Some(SQL_V2)), "{v2}");
    assert_eq!(v2["parameters"], json!({"tag": "none"}));
    let (s, _) = c.get(&format!("/workflows/{wf}/versions/9")).await;
    assert_eq!(s, 404);
    let (s, b) = c
        .get(&format!("/workflows/{wf}/versions?cursor=bogus"))
        .await;
    assert_eq!((s, field(&b)), (422, "cursor".into()));
    // Versions are immutable, in the database too.
    let refused = sea_orm::ConnectionTrait::execute_unprepared(
        &sys.db.connect().await.expect("db"),
        "UPDATE workflow_versions SET sql_query = 'SELECT 0'",
    )
    .await;
    assert!(refused.is_err(), "a version was changed");

    // Validate: renders without running; the default window; 422 naming the field.
    let (s, v) = c
        .post(
            &format!("/workflows/{wf}/validate"),
            json!({"parameters": {"tag": "it's"}}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["version"], 3);
    assert_eq!(
        v["sql_query"],
        "SELECT campaign, 2 AS v FROM dsp_impressions WHERE tag = 'it''s'"
    );
    assert_eq!(v["time_window_defaulted"], true);
    let today = chrono::Utc::now().date_naive();
    let end = (today - chrono::Days::new(14))
        .format("%Y-%m-%dT00:00:00")
        .to_string();
    let start = (today - chrono::Days::new(44))
        .format("%Y-%m-%dT00:00:00")
        .to_string();
    assert_eq!(
        v["time_window"],
        json!({"start": start, "end": end, "time_zone": "UTC"})
    );
    let (s, v) = c
        .post(
            &format!("/workflows/{wf}/validate"),
            json!({"version": 1,
            "time_window": {"start": "2026-01-01T00:00:00", "end": "2026-01-08T00:00:00"}}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v["sql_query"],
        "SELECT campaign, 1 AS v FROM dsp_impressions WHERE tag = 'none'"
    );
    assert_eq!(v["time_window_defaulted"], false);
    for (body, named) in [
        (json!({"parameters": {"zzz": 1}}), "parameters.zzz"),
        (json!({"version": 7}), "version"),
        (json!({"version": 0}), "version"),
        (
            json!({"time_window": {"start": "2026-01-08T00:00:00", "end": "2026-01-01T00:00:00"}}),
            "time_window.end",
        ),
    ] {
        let (s, b) = c
            .post(&format!("/workflows/{wf}/validate"), body.clone())
            .await;
        assert_eq!((s, field(&b)), (422, named.to_string()), "{body}: {b}");
    }

    // Runs: a named version, and the default window said so.
    let (s, run1) = c
        .post(
            &format!("/workflows/{wf}/executions"),
            json!({"version": 1}),
        )
        .await;
    assert_eq!(s, 202, "{run1}");
    assert_eq!(run1["workflow_version"], 1);
    assert_eq!(run1["time_window_defaulted"], true);
    assert_eq!(run1["time_window"]["end"], end);
    assert_eq!(
        run1["sql_query"],
        "SELECT campaign, 1 AS v FROM dsp_impressions WHERE tag = 'none'"
    );
    let (s, b) = c
        .post(
            &format!("/workflows/{wf}/executions"),
            json!({"version": 8}),
        )
        .await;
    assert_eq!((s, field(&b)), (422, "version".into()), "{b}");

    // Another user's workflow is not found on every route.
    for (s, b) in [
        other.get(&format!("/workflows/{wf}/versions")).await,
        other.get(&format!("/workflows/{wf}/versions/1")).await,
        other
            .post(&format!("/workflows/{wf}/validate"), json!({}))
            .await,
        other
            .patch(&format!("/workflows/{wf}"), json!({"name": "mine"}))
            .await,
        other.delete(&format!("/workflows/{wf}")).await,
        other
            .post(&format!("/workflows/{wf}/executions"), json!({}))
            .await,
    ] {
        assert_eq!(s, 404, "{b}");
    }

    // Delete: refused while the queued run, an enabled schedule and a collection use it.
    let (s, sched) = c
        .post(
            "/schedules",
            json!({"workflow_id": wf, "name": "daily", "cron": "0 6 * * *",
            "time_window": {"kind": "previous_day"}}),
        )
        .await;
    assert_eq!(s, 201, "{sched}");
    let (s, coll) = c
        .post(
            "/collections",
            json!({"workflow_id": wf, "start": "2026-01-05", "end": "2026-01-12"}),
        )
        .await;
    assert_eq!(s, 201, "{coll}");
    assert_eq!(coll["workflow_version"], 3);
    let (s, b) = c.delete(&format!("/workflows/{wf}")).await;
    assert_eq!(s, 409, "{b}");
    let detail = b["detail"].as_str().unwrap_or_default();
    for why in [
        "run(s) not yet finished",
        "enabled schedule(s)",
        "collection(s)",
    ] {
        assert!(detail.contains(why), "{detail}");
    }
    let (s, _) = c
        .post(
            &format!("/collections/{}/cancel", coll["id"].as_str().unwrap()),
            json!({}),
        )
        .await;
    assert_eq!(s, 200);
    let (s, _) = c
        .post(
            &format!("/schedules/{}/pause", sched["id"].as_str().unwrap()),
            json!({}),
        )
        .await;
    assert_eq!(s, 200);
    let run_id = run1["id"].as_str().unwrap();
    let (s, _) = c
        .post(&format!("/executions/{run_id}/cancel"), json!({}))
        .await;
    assert_eq!(s, 200);
    let (s, b) = c.delete(&format!("/workflows/{wf}")).await;
    assert_eq!(s, 204, "{b}");

    // Gone from reads and lists; its run's history stays.
    let (s, _) = c.get(&format!("/workflows/{wf}")).await;
    assert_eq!(s, 404);
    let (_, list) = c.get("/workflows").await;
    assert!(
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|w| w["id"] != wf.as_str()),
        "{list}"
    );
    let (s, run) = c.get(&format!("/executions/{run_id}")).await;
    assert_eq!(
        (s, run["status"].as_str()),
        (200, Some("cancelled")),
        "{run}"
    );
    let (s, _) = c
        .post(&format!("/workflows/{wf}/executions"), json!({}))
        .await;
    assert_eq!(s, 404);
    // Nothing runs it again: its collection's windows are not retried, its schedule not
    // resumed.
    let coll_id = coll["id"].as_str().unwrap();
    let (s, b) = c
        .post(&format!("/collections/{coll_id}/retry-failed"), json!({}))
        .await;
    assert_eq!(s, 409, "{b}");
    let sched_id = sched["id"].as_str().unwrap();
    let (s, _) = c
        .post(&format!("/schedules/{sched_id}/resume"), json!({}))
        .await;
    assert_eq!(s, 404);
    sys.cleanup().await;
}
