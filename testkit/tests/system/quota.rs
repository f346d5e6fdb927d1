//! Capacity beyond one instance: an account cap below the sum of its instances' caps,
//! and a daily quota that holds the sixth run with its reason shown.

use crate::{SQL, assert_all_succeeded};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::json;
use std::time::Duration;
use testkit::{System, SystemOptions, wait_until};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_cap_below_its_instances_caps_holds_across_instances() {
    let mut opts = SystemOptions::default();
    opts.sim.run_duration = Duration::from_millis(600);
    let sys = System::start(opts).await.expect("system");
    let mut c = sys.client();
    c.register_and_login("acap@example.com").await;
    let (s, _) = c
        .put("/amazon/connection", json!({"refresh_token": "Atzr|acap"}))
        .await;
    assert_eq!(s, 200);
    let (s, b) = c
        .post("/accounts", json!({"name": "Brand", "entity_id": "ENTITY1AA1AA11AAA1", "marketplace_id": "ATVPDKIKX0DER", "region": "NA", "max_concurrent_executions": 3}))
        .await;
    assert_eq!(s, 201, "{b}");
    let account = b["id"].as_str().unwrap().to_string();
    let wf_a = c
        .workflow(&c.instance(&account, "amcacapa", 2).await, SQL, json!({}))
        .await;
    let wf_b = c
        .workflow(&c.instance(&account, "amcacapb", 2).await, SQL, json!({}))
        .await;
    let mut ids = Vec::new();
    for n in 0..20u64 {
        let wf = if n % 2 == 0 { &wf_a } else { &wf_b };
        ids.push(c.run(wf, json!({"n": n})).await);
    }
    let db = sys.db.connect().await.unwrap();
    // Sample AMC's active runs across both instances while the runs go through.
    let mut max_active_at_amc = 0usize;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        let stats = sys.sim_stats().await.unwrap();
        let active = stats["runs"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| matches!(r["status"].as_str(), Some("PENDING" | "RUNNING")))
            .count();
        max_active_at_amc = max_active_at_amc.max(active);
        let done = db
            .query_one_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT count(*) FILTER (WHERE status NOT IN ('succeeded', 'failed', 'cancelled')) AS open FROM executions",
            ))
            .await
            .unwrap()
            .and_then(|r| r.try_get::<i64>("", "open").ok())
            == Some(0);
        if done || tokio::time::Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let runs = c.wait_terminal(&ids, Duration::from_secs(60)).await;
    assert_all_succeeded(&runs);
    let stats = sys.sim_stats().await.unwrap();
    let peak = &stats["peak_active"];
    assert!(peak["amcacapa"].as_u64().unwrap() <= 2, "{peak}");
    assert!(peak["amcacapb"].as_u64().unwrap() <= 2, "{peak}");
    assert!(
        max_active_at_amc <= 3,
        "AMC saw {max_active_at_amc} at once"
    );
    // Exactly: the most slots ever held at once across the account (from our own
    // timestamps: a slot is held from `submitting` until `fetching` or the end).
    let r = db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "WITH spans AS (SELECT submitting_at AS s, coalesce(fetching_at, completed_at) AS e FROM executions) \
             SELECT max((SELECT count(*) FROM spans o WHERE o.s <= x.s AND o.e > x.s)) AS peak FROM spans x",
        ))
        .await
        .unwrap()
        .unwrap();
    let held_at_once: i64 = r.try_get("", "peak").unwrap();
    assert_eq!(
        held_at_once, 3,
        "the account cap is reached and never exceeded"
    );
    sys.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daily_quota_of_five_admits_five_and_holds_the_sixth_with_its_reason() {
    let sys = System::start(SystemOptions::default())
        .await
        .expect("system");
    let mut c = sys.client();
    c.register_and_login("quota@example.com").await;
    let (s, _) = c
        .put("/amazon/connection", json!({"refresh_token": "Atzr|quota"}))
        .await;
    assert_eq!(s, 200);
    let account = c.account().await;
    let zone = "America/New_York";
    let (s, b) = c
        .post(
            "/instances",
            json!({"name": "q", "account_id": account, "amc_instance_id": "amcquota", "max_concurrent_executions": 10, "daily_execution_quota": 5, "time_zone": zone}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let wf = c.workflow(b["id"].as_str().unwrap(), SQL, json!({})).await;
    let mut ids = Vec::new();
    for n in 0..6u64 {
        ids.push(c.run(&wf, json!({"n": n})).await);
    }
    let five = c.wait_terminal(&ids[..5], Duration::from_secs(60)).await;
    assert_all_succeeded(&five);
    // Give admission every chance to (wrongly) start the sixth.
    let reason_shown = wait_until(Duration::from_secs(5), || {
        let (c, id) = (&c, &ids[5]);
        async move {
            let e = c.get(&format!("/executions/{id}")).await.1;
            e["waiting_reason"] == "daily_quota"
        }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, sixth) = c.get(&format!("/executions/{}", ids[5])).await;
    assert!(reason_shown, "{sixth}");
    assert_eq!(sixth["status"], "queued", "{sixth}");
    assert!(sixth["error"].is_null(), "{sixth}");
    assert_eq!(sixth["waiting_reason"], "daily_quota", "{sixth}");
    assert_eq!(sys.sim_stats().await.unwrap()["creates"].as_u64(), Some(5));
    // It starts at the next midnight of the instance's zone (as Postgres counts days).
    let until = sixth["quota_wait_until"]
        .as_str()
        .expect("quota_wait_until");
    let db = sys.db.connect().await.unwrap();
    let r = db
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT $1::timestamptz = ((date_trunc('day', now() AT TIME ZONE $2) + interval '1 day') AT TIME ZONE $2) AS ok",
            [until.into(), zone.into()],
        ))
        .await
        .unwrap()
        .unwrap();
    assert!(r.try_get::<bool>("", "ok").unwrap(), "{until}");
    // A finished run has no waiting reason.
    let (_, first) = c.get(&format!("/executions/{}", ids[0])).await;
    assert!(first["waiting_reason"].is_null(), "{first}");
    sys.cleanup().await;
}
