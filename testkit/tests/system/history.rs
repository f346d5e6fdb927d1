//! The run history: `GET /executions` with every filter, paged, while runs are created;
//! "refresh status now" for one run and for all; retry of an ended run.

use crate::SQL;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::{Duration, Instant};
use testkit::{Client, System, SystemOptions, wait_until};

/// Runs inserted straight into the table (the API writes them no differently): the
/// 10,000 the issue names (about 40 s of CI time against a debug build, in parallel with
/// the other system tests).
const INSERTED: usize = 10_000;

fn field(b: &Value) -> &str {
    b["errors"][0]["field"].as_str().unwrap_or_default()
}

async fn status_of(c: &Client, id: &str) -> String {
    let (_, b) = c.get(&format!("/executions/{id}")).await;
    b["status"].as_str().unwrap_or_default().to_string()
}

async fn wait_status(c: &Client, id: &str, status: &str, timeout: Duration) {
    let ok = wait_until(timeout, || async move { status_of(c, id).await == status }).await;
    assert!(ok, "{id} never {status}: {}", status_of(c, id).await);
}

/// Waits until AMC has finished the runs of these SQL numbers (a check then sees it).
async fn wait_done_at_amc(sys: &System, ns: &[u64]) {
    for &n in ns {
        let done = wait_until(Duration::from_secs(15), || async move {
            let runs = sys.sim_runs_matching(&crate::rendered(n)).await.unwrap();
            runs.iter().all(|r| r["status"] == "SUCCEEDED") && !runs.is_empty()
        })
        .await;
        assert!(done, "run {n} never finished at AMC");
    }
}

/// Inserts [`INSERTED`] ended runs, a day old and a millisecond apart, spread over two
/// workflows (on two instances), three statuses and the three origins (a schedule's and a
/// collection's). Ended runs keep their status, so each filter's answer is fixed.
async fn insert_runs(sys: &System, wf: [&str; 2], schedule: &str, collection: &str) {
    let db = sys.db.connect().await.expect("db");
    let sql = format!(
        "INSERT INTO executions (id, user_id, workflow_id, instance_id, status, sql_query, parameters, \
           time_window_start, time_window_end, time_zone, triggered_by, schedule_id, collection_id, \
           created_at, updated_at, completed_at) \
         SELECT gen_random_uuid(), w.user_id, w.id, w.instance_id, \
           (ARRAY['succeeded', 'failed', 'cancelled'])[1 + g % 3], 'SELECT 1', '{{}}', \
           '2026-01-01', '2026-01-08', 'UTC', \
           CASE WHEN g % 5 = 0 THEN 'schedule' WHEN g % 5 = 1 THEN 'collection' ELSE 'api' END, \
           CASE WHEN g % 5 = 0 THEN '{schedule}'::uuid END, \
           CASE WHEN g % 5 = 1 THEN '{collection}'::uuid END, \
           t, t, t \
         FROM generate_series(1, {INSERTED}) g \
         JOIN workflows w ON w.id = (ARRAY['{}', '{}']::uuid[])[1 + g % 2] \
         CROSS JOIN LATERAL (SELECT now() - interval '1 day' + g * interval '1 millisecond' AS t) c",
        wf[0], wf[1]
    );
    db.execute_unprepared(&sql).await.expect("insert runs");
    // Ties on created_at are ordered by id: give a few runs the same instant.
    db.execute_raw(Statement::from_string(
        sea_orm::DbBackend::Postgres,
        "UPDATE executions SET created_at = date_trunc('second', created_at) \
         WHERE sql_query = 'SELECT 1' AND created_at < now() - interval '1 day' + interval '1 second'",
    ))
    .await
    .expect("ties");
}

/// The inserted runs matching `filter` (SQL over the table), newest first.
async fn expected(sys: &System, user: &str, filter: &str) -> Vec<String> {
    let db = sys.db.connect().await.expect("db");
    let rows = db
        .query_all_raw(Statement::from_string(
            sea_orm::DbBackend::Postgres,
            format!(
                "SELECT id::text AS id FROM executions WHERE user_id = '{user}' AND sql_query = 'SELECT 1' \
                 AND {filter} ORDER BY created_at DESC, id DESC"
            ),
        ))
        .await
        .expect("expected");
    rows.iter()
        .map(|r| r.try_get::<String>("", "id").expect("id"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_through_thousands_of_runs_with_each_filter_returns_each_once_in_order() {
    let sys = System::start(SystemOptions::default())
        .await
        .expect("system");
    let mut c = sys.client();
    c.register_and_login("history@example.com").await;
    let setup = c.first_run_setup("amchist1", 10, SQL, json!({})).await;
    let instance2 = c.instance(&setup.account_id, "amchist2", 10).await;
    let wf2 = c.workflow(&instance2, SQL, json!({})).await;
    let wf1 = setup.workflow_id.clone();
    let (s, schedule) = c
        .post(
            "/schedules",
            json!({"workflow_id": wf1, "name": "s", "cron": "0 7 * * 1", "enabled": false,
                   "parameters": {"n": 1}, "time_window": {"kind": "rolling", "days": 7}}),
        )
        .await;
    assert_eq!(s, 201, "{schedule}");
    let (s, collection) = c
        .post(
            "/collections",
            json!({"workflow_id": wf2, "start": "2026-11-01", "end": "2026-11-03",
                   "granularity": "day", "parameters": {"n": 2}}),
        )
        .await;
    assert_eq!(s, 201, "{collection}");
    let (schedule, collection) = (
        schedule["id"].as_str().unwrap().to_string(),
        collection["id"].as_str().unwrap().to_string(),
    );
    insert_runs(&sys, [&wf1, &wf2], &schedule, &collection).await;
    let (_, me) = c.get("/me").await;
    let user = me["id"].as_str().expect("user id").to_string();

    // Runs are created (and move) all along.
    let creating = {
        let c = c.clone();
        let wf = wf1.clone();
        tokio::spawn(async move {
            for n in 100.. {
                c.run(&wf, json!({"n": n})).await;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };

    let cases: Vec<(String, String)> = vec![
        (String::new(), "true".into()),
        (
            format!("workflow_id={wf2}"),
            format!("workflow_id = '{wf2}'"),
        ),
        (
            format!("instance_id={}", setup.instance_id),
            format!("instance_id = '{}'", setup.instance_id),
        ),
        ("status=failed".into(), "status = 'failed'".into()),
        (
            "status=failed&status=cancelled".into(),
            "status IN ('failed', 'cancelled')".into(),
        ),
        ("triggered_by=api".into(), "triggered_by = 'api'".into()),
        (
            "triggered_by=schedule".into(),
            "triggered_by = 'schedule'".into(),
        ),
        (
            format!("schedule_id={schedule}"),
            format!("schedule_id = '{schedule}'"),
        ),
        (
            format!("collection_id={collection}"),
            format!("collection_id = '{collection}'"),
        ),
        ("created_after=CUT".into(), "created_at > CUT".into()),
        (
            "created_before=CUT&status=succeeded&workflow_id=WF1".into(),
            format!("created_at < CUT AND status = 'succeeded' AND workflow_id = '{wf1}'"),
        ),
    ];
    // The cut instant (half-way through the inserted runs), read once so that the API and the SQL agree on it.
    let db = sys.db.connect().await.expect("db");
    let cut_row = db
        .query_one_raw(Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT to_char(m AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') AS cut, \
               m::text AS cut_sql \
             FROM (SELECT min(created_at) + (max(created_at) - min(created_at)) / 2 AS m \
               FROM executions WHERE sql_query = 'SELECT 1') x",
        ))
        .await
        .expect("cut")
        .expect("a row");
    let cut: String = cut_row.try_get("", "cut").unwrap();
    let cut_sql: String = cut_row.try_get("", "cut_sql").unwrap();
    let started = Instant::now();
    for (query, condition) in &cases {
        let query = query.replace("CUT", &cut).replace("WF1", &wf1);
        let condition = condition.replace("CUT", &format!("'{cut_sql}'::timestamptz"));
        let want = expected(&sys, &user, &condition).await;
        assert!(!want.is_empty(), "{query}: the case selects nothing");
        let got = c.list_all(&format!("/executions?limit=500&{query}")).await;
        let mut seen = HashSet::new();
        for pair in got.windows(2) {
            let key = |e: &Value| {
                let at = e["created_at"].as_str().unwrap();
                (
                    chrono::DateTime::parse_from_rfc3339(at).expect("created_at"),
                    e["id"].as_str().unwrap().to_string(),
                )
            };
            assert!(key(&pair[0]) > key(&pair[1]), "{query}: out of order");
        }
        for e in &got {
            assert!(
                seen.insert(e["id"].as_str().unwrap().to_string()),
                "{query}: twice"
            );
        }
        let inserted: HashSet<&String> = want.iter().collect();
        let got_inserted: Vec<String> = got
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_string())
            .filter(|id| inserted.contains(id))
            .collect();
        assert_eq!(got_inserted.len(), want.len(), "{query}: each exactly once");
        assert!(got_inserted == want, "{query}: in order");
    }
    creating.abort();
    eprintln!("paged {} filters in {:?}", cases.len(), started.elapsed());

    // A small page, and its cursor.
    let (s, b) = c.get("/executions?limit=3&status=failed").await;
    assert_eq!(
        (s, b["items"].as_array().map(Vec::len)),
        (200, Some(3)),
        "{b}"
    );
    let next = b["next_cursor"].as_str().expect("a next page").to_string();
    let (s, b2) = c
        .get(&format!("/executions?limit=3&status=failed&cursor={next}"))
        .await;
    assert_eq!(s, 200, "{b2}");
    assert_ne!(b["items"][2]["id"], b2["items"][0]["id"]);

    // Bad values: 422 naming the parameter.
    for (query, named) in [
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("cursor=not-a-cursor", "cursor"),
        ("workflow_id=42", "workflow_id"),
        ("instance_id=x", "instance_id"),
        ("status=done", "status"),
        ("status=failed&status=nope", "status"),
        ("triggered_by=cron", "triggered_by"),
        ("schedule_id=1", "schedule_id"),
        ("collection_id=1", "collection_id"),
        ("created_after=yesterday", "created_after"),
        ("created_before=2026-13-01T00:00:00Z", "created_before"),
        ("created_before=1900-01-01T00:00:00Z", "created_before"),
    ] {
        let (s, b) = c.get(&format!("/executions?{query}")).await;
        assert_eq!((s, field(&b)), (422, named), "{query} → {b}");
    }
    // Another user sees none of these runs, even naming their workflow.
    let mut other = sys.client();
    other.register_and_login("history-other@example.com").await;
    let (s, b) = other.get(&format!("/executions?workflow_id={wf1}")).await;
    assert_eq!(
        (s, b["items"].as_array().map(Vec::len)),
        (200, Some(0)),
        "{b}"
    );
    sys.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_checks_running_runs_at_once_and_retry_repeats_an_ended_run() {
    let mut opts = SystemOptions::default();
    // The first status check would come a minute after submission: only a refresh makes
    // a run end within the test.
    opts.env.push(("AMP_POLL_MIN", "60s".to_string()));
    opts.env.push(("AMP_POLL_MAX", "60s".to_string()));
    opts.sim.run_duration = Duration::from_millis(200);
    let sys = System::start(opts).await.expect("system");
    let mut c = sys.client();
    c.register_and_login("refresh@example.com").await;
    let setup = c.first_run_setup("amcrefresh", 10, SQL, json!({})).await;
    let wf = setup.workflow_id.clone();
    let mut other = sys.client();
    other.register_and_login("refresh-other@example.com").await;

    // One run: running at AMC (already done there), its check a minute away.
    let one = c.run(&wf, json!({"n": 1})).await;
    wait_status(&c, &one, "running", Duration::from_secs(15)).await;
    let (s, b) = other
        .post(&format!("/executions/{one}/refresh"), json!({}))
        .await;
    assert_eq!(s, 404, "another user's run: {b}");
    let (s, b) = other
        .post(&format!("/executions/{one}/retry"), json!({}))
        .await;
    assert_eq!(s, 404, "another user's run: {b}");
    let (s, b) = c.post(&format!("/executions/{one}/retry"), json!({})).await;
    assert_eq!(s, 409, "a running run is not retried: {b}");
    let (s, b) = c.post("/executions/nope/refresh", json!({})).await;
    assert_eq!((s, field(&b)), (422, "id"), "{b}");
    let (s, b) = c.post("/executions/nope/retry", json!({})).await;
    assert_eq!((s, field(&b)), (422, "id"), "{b}");
    wait_done_at_amc(&sys, &[1]).await;
    let asked = Instant::now();
    let (s, b) = c
        .post(&format!("/executions/{one}/refresh"), json!({}))
        .await;
    assert_eq!(s, 202, "{b}");
    assert_eq!(b["execution_ids"], json!([one]), "{b}");
    wait_status(&c, &one, "succeeded", Duration::from_secs(15)).await;
    assert!(asked.elapsed() < Duration::from_secs(30), "checked at once");
    let (s, b) = c
        .post(&format!("/executions/{one}/refresh"), json!({}))
        .await;
    assert_eq!(s, 409, "an ended run has nothing to check: {b}");

    // All of the user's running runs (not another user's).
    let others_setup = other
        .first_run_setup("amcrefresh2", 10, SQL, json!({}))
        .await;
    let theirs = other.run(&others_setup.workflow_id, json!({"n": 9})).await;
    let runs: Vec<String> = {
        let mut v = Vec::new();
        for n in 2..5 {
            v.push(c.run(&wf, json!({"n": n})).await);
        }
        v
    };
    for id in runs.iter().chain([&theirs]) {
        let who = if id == &theirs { &other } else { &c };
        wait_status(who, id, "running", Duration::from_secs(15)).await;
    }
    wait_done_at_amc(&sys, &[2, 3, 4, 9]).await;
    let (s, b) = c.post("/executions/refresh", json!({})).await;
    assert_eq!(s, 202, "{b}");
    let mut refreshed: Vec<String> = b["execution_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    refreshed.sort();
    let mut want = runs.clone();
    want.sort();
    assert_eq!(refreshed, want, "the user's running runs, and only theirs");
    let ended = c.wait_terminal(&runs, Duration::from_secs(15)).await;
    assert!(
        ended.iter().all(|e| e["status"] == "succeeded"),
        "{ended:?}"
    );
    assert_eq!(status_of(&other, &theirs).await, "running", "not refreshed");

    // Retry: a new run with the same inputs, linked to the old one, that runs.
    let (_, old) = c.get(&format!("/executions/{one}")).await;
    let (s, retry) = c.post(&format!("/executions/{one}/retry"), json!({})).await;
    assert_eq!(s, 202, "{retry}");
    assert_eq!(retry["retry_of"].as_str(), Some(one.as_str()), "{retry}");
    assert_ne!(retry["id"], old["id"]);
    assert_eq!(retry["status"], "queued");
    assert_eq!(retry["triggered_by"], "api");
    for k in [
        "workflow_id",
        "instance_id",
        "sql_query",
        "parameters",
        "time_window",
    ] {
        assert_eq!(retry[k], old[k], "{k}");
    }
    let retry_id = retry["id"].as_str().unwrap().to_string();
    wait_status(&c, &retry_id, "running", Duration::from_secs(15)).await;
    let finished = wait_until(Duration::from_secs(15), || async {
        let runs = sys.sim_runs_matching(&crate::rendered(1)).await.unwrap();
        runs.len() == 2 && runs.iter().all(|r| r["status"] == "SUCCEEDED")
    })
    .await;
    assert!(finished, "the retry ran at AMC");
    let (s, b) = c
        .post(&format!("/executions/{retry_id}/refresh"), json!({}))
        .await;
    assert_eq!(
        (s, b["execution_ids"].clone()),
        (202, json!([retry_id])),
        "{b}"
    );
    wait_status(&c, &retry_id, "succeeded", Duration::from_secs(15)).await;
    let (_, got) = c.get(&format!("/executions/{retry_id}")).await;
    assert_eq!(got["retry_of"].as_str(), Some(one.as_str()));
    sys.cleanup().await;
}
