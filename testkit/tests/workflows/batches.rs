//! Batch runs: one workflow over many of the user's instances. A 100-instance batch runs
//! under each instance's cap, and cancelling it cancels every run still going (at AMC
//! too), ending it `cancelled` with one `batch.completed` carrying the right counts; a
//! small batch runs to success with each instance's parameters and default window, its
//! runs listed by an index-backed `batch_id` filter; bad input is a 422 naming the field,
//! another user's workflow, instance or batch a 404; admission takes a batch's run as an
//! interactive one, ahead of an older collection window.

use crate::field;
use sea_orm::{ConnectionTrait, Statement, TransactionTrait};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::Duration;
use testkit::{Behaviour, Client, Receiver, System, SystemOptions, wait_until};

/// Each run names its batch (`tag`) and its brand (an instance's own value).
const SQL: &str =
    "SELECT campaign FROM dsp_impressions WHERE tag = '{{tag}}' AND brand = '{{brand}}'";

/// The system with AMC runs of `run` and status checks from `poll[0]` growing to `poll[1]`.
async fn system(run: Duration, [min, max]: [&str; 2]) -> System {
    System::start(SystemOptions {
        sim: amc_sim::SimConfig {
            addr: "127.0.0.1:0".parse().expect("addr"),
            run_duration: run,
            ..amc_sim::SimConfig::default()
        },
        env: vec![("AMP_POLL_MIN", min.into()), ("AMP_POLL_MAX", max.into())],
        ..SystemOptions::default()
    })
    .await
    .expect("system")
}

/// A user with a connection, an account, `n` instances (`amcbatch000`…) of cap `cap`, and
/// the workflow on the first; returns the client, the workflow and the instances.
async fn user(sys: &System, email: &str, n: usize, cap: u32) -> (Client, String, Vec<String>) {
    let mut c = sys.client();
    c.register_and_login(email).await;
    let setup = c
        .first_run_setup(
            "amcbatch000",
            cap,
            SQL,
            json!({"tag": "none", "brand": "none"}),
        )
        .await;
    let mut instances = vec![setup.instance_id];
    for i in 1..n {
        instances.push(
            c.instance(&setup.account_id, &format!("amcbatch{i:03}"), cap)
                .await,
        );
    }
    (c, setup.workflow_id, instances)
}

/// A batch of `workflow` over `instances` (brand `b<i>` each) tagged `tag`.
async fn batch(c: &Client, workflow: &str, instances: &[String], tag: &str) -> Value {
    let list: Vec<Value> = instances
        .iter()
        .enumerate()
        .map(|(i, id)| json!({"instance_id": id, "parameters": {"brand": format!("b{i}")}}))
        .collect();
    let (s, b) = c
        .post(
            "/batches",
            json!({"workflow_id": workflow, "instances": list, "parameters": {"tag": tag},
                   "time_window": {"start": "2026-01-01T00:00:00", "end": "2026-01-08T00:00:00"}}),
        )
        .await;
    assert_eq!(s, 201, "create batch: {b}");
    b
}

/// Waits until `check` holds for the batch (or the timeout); returns its last body.
async fn wait_batch(
    c: &Client,
    id: &str,
    timeout: Duration,
    check: impl Fn(&Value) -> bool,
) -> Value {
    c.wait_for(&format!("/batches/{id}"), timeout, check).await
}

/// The sim's runs of one batch (by its tag), by status.
async fn sim_statuses(sys: &System, tag: &str) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    for r in sys
        .sim_runs_matching(&format!("tag = '{tag}'"))
        .await
        .expect("sim runs")
    {
        *out.entry(r["status"].as_str().unwrap_or_default().to_string())
            .or_default() += 1;
    }
    out
}

/// The bodies of the `batch.completed` events recorded for `id`.
async fn completed_events(sys: &System, id: &str) -> Vec<Value> {
    let db = sys.db.connect().await.expect("db");
    db.query_all_raw(Statement::from_string(
        sea_orm::DbBackend::Postgres,
        format!(
            "SELECT payload FROM events WHERE subject_id = '{id}' AND event_type = 'batch.completed'"
        ),
    ))
    .await
    .expect("events")
    .iter()
    .map(|r| r.try_get::<Value>("", "payload").expect("payload"))
    .collect()
}

/// The plan of `GET /executions?batch_id=` for the batch's owner, with sequential scans
/// off (as they would be on a table of millions of runs): the filter has its index.
async fn list_plan(sys: &System, batch: &str) -> String {
    let db = sys.db.connect().await.expect("db");
    let owner = db
        .query_one_raw(Statement::from_string(
            sea_orm::DbBackend::Postgres,
            format!("SELECT user_id FROM batches WHERE id = '{batch}'"),
        ))
        .await
        .expect("owner")
        .expect("the batch")
        .try_get::<uuid::Uuid>("", "user_id")
        .expect("user_id");
    let filter = common::execution::ListFilter {
        batch_id: Some(common::ids::BatchId(batch.parse().expect("uuid"))),
        ..Default::default()
    };
    let q = common::execution::list_statement(common::ids::UserId(owner), &filter, None, 51);
    let txn = db.begin().await.expect("begin");
    txn.execute_unprepared("SET LOCAL enable_seqscan = off")
        .await
        .expect("set");
    let rows = txn
        .query_all_raw(Statement::from_sql_and_values(
            sea_orm::DbBackend::Postgres,
            format!("EXPLAIN {}", q.sql),
            q.values.map(|v| v.0).unwrap_or_default(),
        ))
        .await
        .expect("explain");
    rows.iter()
        .map(|r| r.try_get::<String>("", "QUERY PLAN").expect("plan line"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn counts(b: &Value) -> [i64; 5] {
    ["queued", "running", "succeeded", "failed", "cancelled"]
        .map(|k| b["counts"][k].as_i64().unwrap_or(-1))
}

#[tokio::test]
async fn a_100_instance_batch_runs_under_each_cap_and_cancelling_it_cancels_every_run_still_going()
{
    // AMC runs that outlast the test: every run at AMC is still going when cancelled.
    let sys = system(Duration::from_secs(600), ["300ms", "1s"]).await;
    let (c, wf, instances) = user(&sys, "fleet@example.com", 100, 1).await;
    let hooks = Receiver::start(Behaviour::Accept).await.unwrap();
    let (s, b) = c
        .post(
            "/webhooks",
            json!({"url": hooks.url, "event_types": ["batch.completed"]}),
        )
        .await;
    assert_eq!(s, 201, "{b}");

    // Two batches over the same 100 instances, each of cap 1: the first holds every slot,
    // the second waits for them.
    let first = batch(&c, &wf, &instances, "first").await;
    assert_eq!(first["total"], 100);
    assert_eq!(first["status"], "running");
    let second = batch(&c, &wf, &instances, "second").await;
    let (a, b) = (
        first["id"].as_str().unwrap().to_string(),
        second["id"].as_str().unwrap().to_string(),
    );
    let at_amc = wait_until(Duration::from_secs(60), || async {
        sim_statuses(&sys, "first").await.get("RUNNING") == Some(&100)
    })
    .await;
    assert!(
        at_amc,
        "the first batch's runs at AMC: {:?}",
        sim_statuses(&sys, "first").await
    );
    let running = wait_batch(&c, &a, Duration::from_secs(20), |b| counts(b)[1] == 100).await;
    assert_eq!(counts(&running), [0, 100, 0, 0, 0], "{running}");
    let (_, waiting) = c.get(&format!("/batches/{b}")).await;
    assert_eq!(counts(&waiting), [100, 0, 0, 0, 0], "{waiting}");
    assert!(
        sim_statuses(&sys, "second").await.is_empty(),
        "no slot for the second"
    );
    let runs = c
        .list_all(&format!("/executions?batch_id={b}&limit=500"))
        .await;
    assert_eq!(runs.len(), 100);
    assert!(
        runs.iter()
            .all(|r| r["triggered_by"] == "batch" && r["batch_id"] == b.as_str())
    );
    let (_, one) = c
        .get(&format!("/executions/{}", runs[0]["id"].as_str().unwrap()))
        .await;
    assert_eq!(one["waiting_reason"], "instance_cap", "{one}");

    // Cancelling the first cancels its 100 runs at AMC; the second then takes the slots.
    let (s, cancelled) = c.post(&format!("/batches/{a}/cancel"), json!({})).await;
    assert_eq!(
        (s, cancelled["status"].as_str()),
        (200, Some("cancelled")),
        "{cancelled}"
    );
    let ended = wait_batch(&c, &a, Duration::from_secs(60), |b| {
        !b["completed_at"].is_null()
    })
    .await;
    assert_eq!(ended["status"], "cancelled", "{ended}");
    assert_eq!(counts(&ended), [0, 0, 0, 0, 100], "{ended}");
    let first_at_amc = sim_statuses(&sys, "first").await;
    assert_eq!(
        first_at_amc.get("CANCELLED"),
        Some(&100),
        "{first_at_amc:?}"
    );
    // Cancel the second while its runs are on their way: queued, submitting or at AMC.
    let some_started = wait_until(Duration::from_secs(30), || async {
        sim_statuses(&sys, "second").await.values().sum::<usize>() >= 10
    })
    .await;
    assert!(some_started, "the second batch's runs took the freed slots");
    let (s, r) = c.post(&format!("/batches/{b}/cancel"), json!({})).await;
    assert_eq!(s, 200, "{r}");
    let ended = wait_batch(&c, &b, Duration::from_secs(60), |b| {
        !b["completed_at"].is_null()
    })
    .await;
    assert_eq!(ended["status"], "cancelled", "{ended}");
    assert_eq!(counts(&ended), [0, 0, 0, 0, 100], "{ended}");
    // Every run that reached AMC was cancelled there, and no run is left going.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let second_at_amc = sim_statuses(&sys, "second").await;
    let reached: usize = second_at_amc.values().sum();
    assert_eq!(
        second_at_amc.get("CANCELLED"),
        Some(&reached),
        "{second_at_amc:?}"
    );
    let stats = sys.sim_stats().await.expect("stats");
    assert_eq!(
        stats["cancels"].as_u64(),
        Some(100 + reached as u64),
        "{}",
        stats["cancels"]
    );
    // amc-sim never saw more than the cap (1) of any instance's runs at once.
    let peaks = stats["peak_active"].as_object().expect("peaks");
    assert_eq!(peaks.len(), 100, "every instance ran");
    for (instance, peak) in peaks {
        assert_eq!(peak.as_u64(), Some(1), "{instance} ran {peak} at once");
    }
    let runs = c
        .list_all(&format!("/executions?batch_id={a}&limit=500"))
        .await;
    assert!(runs.iter().all(|r| r["status"] == "cancelled"));

    // One batch.completed each, with the counts, delivered by webhook too.
    for id in [&a, &b] {
        let events = completed_events(&sys, id).await;
        assert_eq!(events.len(), 1, "{id}: {events:?}");
        assert_eq!(events[0]["status"], "cancelled");
        assert_eq!(counts(&events[0]), [0, 0, 0, 0, 100], "{}", events[0]);
    }
    let delivered = wait_until(Duration::from_secs(20), || async {
        hooks.accepted().len() >= 2
    })
    .await;
    assert!(delivered, "batch.completed delivered to the webhook");
    let mut got: Vec<String> = hooks
        .received()
        .iter()
        .map(|r| serde_json::from_slice::<Value>(&r.body).expect("body"))
        .inspect(|m| {
            assert_eq!(m["type"], "batch.completed");
            assert_eq!(m["data"]["counts"]["cancelled"], 100);
        })
        .map(|m| m["data"]["id"].as_str().unwrap().to_string())
        .collect();
    got.sort();
    let mut want = vec![a.clone(), b.clone()];
    want.sort();
    assert_eq!(got, want);
    let (s, again) = c.post(&format!("/batches/{a}/cancel"), json!({})).await;
    assert_eq!(s, 409, "an ended batch: {again}");
    sys.cleanup().await;
}

#[tokio::test]
async fn a_batch_runs_each_instance_with_its_values_and_bad_input_is_named() {
    let sys = system(Duration::from_millis(300), ["100ms", "200ms"]).await;
    let (c, wf, instances) = user(&sys, "small@example.com", 3, 5).await;
    // The third instance reads dates in Los Angeles.
    let (s, b) = c
        .patch(
            &format!("/instances/{}", instances[2]),
            json!({"time_zone": "America/Los_Angeles"}),
        )
        .await;
    assert_eq!(s, 200, "{b}");

    // Success: no window given (each run gets its instance's default), brands per instance.
    let list: Vec<Value> = instances
        .iter()
        .enumerate()
        .map(|(i, id)| json!({"instance_id": id, "parameters": {"brand": format!("brand{i}")}}))
        .collect();
    let (s, created) = c
        .post(
            "/batches",
            json!({"workflow_id": wf, "name": "brands", "instances": list, "parameters": {"tag": "small"}}),
        )
        .await;
    assert_eq!(s, 201, "{created}");
    assert_eq!(created["name"], "brands");
    assert!(created["time_window"].is_null(), "{created}");
    assert_eq!(created["workflow_version"], 1);
    let id = created["id"].as_str().unwrap().to_string();
    let done = wait_batch(&c, &id, Duration::from_secs(60), |b| {
        !b["completed_at"].is_null()
    })
    .await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(counts(&done), [0, 0, 3, 0, 0], "{done}");
    let runs = c
        .list_all(&format!("/executions?batch_id={id}&limit=2"))
        .await;
    assert_eq!(runs.len(), 3);
    for r in &runs {
        let i = instances
            .iter()
            .position(|x| r["instance_id"] == x.as_str())
            .expect("one of the batch's instances");
        assert_eq!(
            r["parameters"],
            json!({"tag": "small", "brand": format!("brand{i}")})
        );
        assert_eq!(r["status"], "succeeded");
        let zone = if i == 2 { "America/Los_Angeles" } else { "UTC" };
        assert_eq!(r["time_window"]["time_zone"], zone, "{r}");
    }
    for i in 0..3 {
        let at_amc = sys
            .sim_runs_matching(&format!("brand = 'brand{i}'"))
            .await
            .unwrap();
        assert_eq!(at_amc.len(), 1);
        assert_eq!(at_amc[0]["instance_id"], format!("amcbatch{i:03}"));
    }
    let batch_runs = c.list_all("/executions?triggered_by=batch").await;
    assert_eq!(batch_runs.len(), 3);
    assert_eq!(completed_events(&sys, &id).await.len(), 1);
    let (s, page) = c.get("/batches?limit=1").await;
    assert_eq!(s, 200, "{page}");
    assert_eq!(page["items"][0]["id"], id.as_str());
    assert!(page["next_cursor"].is_null());
    let plan = list_plan(&sys, &id).await;
    assert!(plan.contains("executions_batch_created_idx"), "{plan}");

    // 422 naming the field.
    let one = |id: &str| json!([{"instance_id": id}]);
    let many: Vec<Value> = (0..101)
        .map(|_| json!({"instance_id": instances[0]}))
        .collect();
    let cases: Vec<(Value, &str)> = vec![
        (json!({"instances": one(&instances[0])}), "workflow_id"),
        (json!({"workflow_id": wf}), "instances"),
        (json!({"workflow_id": wf, "instances": []}), "instances"),
        (json!({"workflow_id": wf, "instances": many}), "instances"),
        (
            json!({"workflow_id": wf, "instances": {"a": 1}}),
            "instances",
        ),
        (
            json!({"workflow_id": wf, "instances": [{"instance_id": instances[0]}, 7]}),
            "instances[1]",
        ),
        (
            json!({"workflow_id": wf, "instances": [{"instance_id": "nope"}]}),
            "instances[0].instance_id",
        ),
        (
            json!({"workflow_id": wf, "instances": [{}]}),
            "instances[0].instance_id",
        ),
        (
            json!({"workflow_id": wf, "instances": [{"instance_id": instances[0]}, {"instance_id": instances[1]},
                   {"instance_id": instances[2]}, {"instance_id": instances[1]}]}),
            "instances[3].instance_id",
        ),
        (
            json!({"workflow_id": wf, "instances": [{"instance_id": instances[0]},
                   {"instance_id": instances[1], "parameters": {"zzz": 1}}]}),
            "instances[1].parameters.zzz",
        ),
        (
            json!({"workflow_id": wf, "instances": [{"instance_id": instances[0], "parameters": [1]}]}),
            "instances[0].parameters",
        ),
        (
            json!({"workflow_id": wf, "instances": one(&instances[0]), "parameters": {"zzz": 1}}),
            "parameters.zzz",
        ),
        (
            json!({"workflow_id": wf, "instances": one(&instances[0]),
                   "time_window": {"start": "2026-01-08T00:00:00", "end": "2026-01-01T00:00:00"}}),
            "time_window.end",
        ),
        (
            json!({"workflow_id": wf, "instances": one(&instances[0]), "version": 9}),
            "version",
        ),
        (
            json!({"workflow_id": wf, "instances": one(&instances[0]), "name": " "}),
            "name",
        ),
    ];
    for (body, want) in cases {
        let (s, b) = c.post("/batches", body.clone()).await;
        assert_eq!(s, 422, "{body} → {b}");
        assert_eq!(field(&b), want, "{body} → {b}");
    }
    // A placeholder with no value anywhere names the instance's parameters.
    let (s, b) = c
        .post("/batches", json!({"workflow_id": wf, "instances": [{"instance_id": instances[0], "parameters": {"brand": null}}]}))
        .await;
    assert_eq!(s, 422, "{b}");
    assert_eq!(field(&b), "instances[0].parameters.brand", "{b}");

    // Another user's workflow, instance and batch are 404; their runs are not listed.
    let (other, their_wf, theirs) = {
        let mut o = sys.client();
        o.register_and_login("other@example.com").await;
        let s = o
            .first_run_setup("amcother01", 5, SQL, json!({"tag": "x", "brand": "y"}))
            .await;
        (o, s.workflow_id, s.instance_id)
    };
    let (s, b) = c
        .post(
            "/batches",
            json!({"workflow_id": their_wf, "instances": one(&instances[0])}),
        )
        .await;
    assert_eq!(s, 404, "{b}");
    let (s, b) = c
        .post(
            "/batches",
            json!({"workflow_id": wf, "instances": [{"instance_id": instances[0]}, {"instance_id": theirs}]}),
        )
        .await;
    assert_eq!(s, 404, "{b}");
    assert!(
        b["detail"]
            .as_str()
            .unwrap()
            .contains("instances[1].instance_id"),
        "{b}"
    );
    for (method, path) in [
        ("GET", format!("/batches/{id}")),
        ("POST", format!("/batches/{id}/cancel")),
    ] {
        let (s, b) = if method == "GET" {
            other.get(&path).await
        } else {
            other.post(&path, json!({})).await
        };
        assert_eq!(s, 404, "{method} {path}: {b}");
    }
    assert!(
        other
            .list_all(&format!("/executions?batch_id={id}"))
            .await
            .is_empty()
    );
    let (_, theirs_list) = other.get("/batches").await;
    assert_eq!(theirs_list["items"], json!([]));
    // An ended batch cannot be cancelled.
    let (s, _) = c.post(&format!("/batches/{id}/cancel"), json!({})).await;
    assert_eq!(s, 409);
    sys.cleanup().await;
}

#[tokio::test]
async fn batch_runs_are_admitted_as_interactive_runs_ahead_of_older_collection_windows() {
    // No worker or scheduler: the test runs the one admission pass itself.
    let sys = System::start(SystemOptions {
        workers: 0,
        schedulers: 0,
        ..SystemOptions::default()
    })
    .await
    .expect("system");
    let mut c = sys.client();
    c.register_and_login("fair@example.com").await;
    let setup = c
        .first_run_setup("amcfair01", 1, SQL, json!({"tag": "t", "brand": "b"}))
        .await;
    // A collection's window waits first; then a batch's run on the same instance (cap 1).
    let (s, coll) = c
        .post(
            "/collections",
            json!({"workflow_id": setup.workflow_id, "granularity": "day",
                   "start": "2026-01-05", "end": "2026-01-08", "max_concurrency": 1}),
        )
        .await;
    assert_eq!(s, 201, "{coll}");
    let created = batch(
        &c,
        &setup.workflow_id,
        std::slice::from_ref(&setup.instance_id),
        "fair",
    )
    .await;
    let db = sys.db.connect().await.expect("db");
    let account = common::ids::AccountId(setup.account_id.parse().expect("uuid"));
    let admit = common::execution::Admit {
        limit: 10,
        lease: std::time::Duration::from_secs(35),
    };
    let admitted = common::execution::admit_account(&db, account, admit)
        .await
        .expect("admission");
    assert_eq!(admitted.len(), 1, "the cap is 1");
    assert!(admitted[0].row.submit_started_at.is_some());
    let (_, run) = c.get(&format!("/executions/{}", admitted[0].row.id)).await;
    assert_eq!(run["triggered_by"], "batch", "{run}");
    assert_eq!(run["batch_id"], created["id"], "{run}");
    assert_eq!(run["status"], "submitting");
    sys.cleanup().await;
}
