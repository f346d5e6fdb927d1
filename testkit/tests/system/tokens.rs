//! LWA tokens: one refresh for a crowd of submits, the scheduler's proactive refresh, and
//! re-authorisation after LWA refuses the refresh token (`invalid_grant`).

use crate::{SQL, assert_all_succeeded};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::{Value, json};
use std::time::Duration;
use testkit::{Client, System, SystemOptions, wait_until};

async fn exchanges(sys: &System) -> u64 {
    sys.sim_stats().await.expect("stats")["token_exchanges"]
        .as_u64()
        .expect("token_exchanges")
}

async fn account_with_cap(c: &Client, cap: u32) -> String {
    let (s, b) = c
        .post("/accounts", json!({"name": "Brand", "entity_id": "ENTITY1AA1AA11AAA1", "marketplace_id": "ATVPDKIKX0DER", "region": "NA", "max_concurrent_executions": cap}))
        .await;
    assert_eq!(s, 201, "account: {b}");
    b["id"].as_str().expect("account id").to_string()
}

async fn connect(c: &Client, refresh_token: &str) -> Value {
    let (s, b) = c
        .put(
            "/amazon/connection",
            json!({"refresh_token": refresh_token}),
        )
        .await;
    assert_eq!(s, 200, "connection: {b}");
    b
}

async fn execution(c: &Client, id: &str) -> Value {
    c.get(&format!("/executions/{id}")).await.1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_submits_with_an_expired_access_token_make_one_lwa_call() {
    let mut opts = SystemOptions::default();
    opts.sim.token_ttl = Duration::from_secs(1);
    let sys = System::start(opts).await.expect("system");
    let mut c = sys.client();
    c.register_and_login("crowd@example.com").await;
    connect(&c, "Atzr|crowd").await;
    // Tokens issued from now on live an hour; the stored one expires within a second.
    sys.sim_admin("config", json!({"token_ttl_secs": 3600}))
        .await
        .unwrap();
    let account = account_with_cap(&c, 100).await;
    let wf = c
        .workflow(&c.instance(&account, "amccrowd", 100).await, SQL, json!({}))
        .await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(exchanges(&sys).await, 1, "only the connect so far");
    let mut set = tokio::task::JoinSet::new();
    for n in 0..100u64 {
        let (c, wf) = (c.clone(), wf.clone());
        set.spawn(async move { c.run(&wf, json!({"n": n})).await });
    }
    let ids: Vec<String> = set.join_all().await;
    let runs = c.wait_terminal(&ids, Duration::from_secs(120)).await;
    assert_all_succeeded(&runs);
    assert_eq!(
        exchanges(&sys).await,
        2,
        "100 submits with an expired token refresh it exactly once"
    );
    sys.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduler_refreshes_tokens_that_expire_soon() {
    let mut opts = SystemOptions::default();
    // A ten-minute token is within the 15-minute horizon; an hour-long one is not.
    opts.sim.token_ttl = Duration::from_secs(600);
    opts.env
        .push(("AMP_TOKEN_REFRESH_INTERVAL", "500ms".to_string()));
    opts.env
        .push(("AMP_TOKEN_REFRESH_AHEAD", "15m".to_string()));
    let sys = System::start(opts).await.expect("system");
    let mut c = sys.client();
    c.register_and_login("ahead@example.com").await;
    let before = connect(&c, "Atzr|ahead").await;
    sys.sim_admin("config", json!({"token_ttl_secs": 3600}))
        .await
        .unwrap();
    let refreshed = wait_until(Duration::from_secs(10), || {
        let sys = &sys;
        async move { exchanges(sys).await >= 2 }
    })
    .await;
    assert!(
        refreshed,
        "the scheduler never refreshed the expiring token"
    );
    // Once the token lives an hour, passes leave it alone.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let settled = exchanges(&sys).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        exchanges(&sys).await,
        settled,
        "an hour-long token is not refreshed again"
    );
    let (_, after) = c.get("/amazon/connection").await;
    assert_eq!(after["status"], "active");
    assert_ne!(
        after["access_token_expires_at"], before["access_token_expires_at"],
        "the stored expiry moved"
    );
    // The new expiry is about an hour away: later than the old ten-minute one by far.
    let db = sys.db.connect().await.unwrap();
    let r = db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT bool_and(access_token_expires_at > now() + interval '50 minutes') AS ok FROM amazon_connections",
        ))
        .await
        .unwrap()
        .unwrap();
    assert!(r.try_get::<bool>("", "ok").unwrap());
    sys.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_grant_needs_reauthorisation_and_runs_at_amc_resume_after_it() {
    let mut opts = SystemOptions::default();
    opts.sim.run_duration = Duration::from_secs(3);
    // A run waiting for re-authorisation checks again only at AMP_POLL_MAX: long enough
    // that only the reconnect can explain a prompt finish.
    opts.env.push(("AMP_POLL_MAX", "60s".to_string()));
    let sys = System::start(opts).await.expect("system");
    let mut alice = sys.client();
    alice.register_and_login("alice@example.com").await;
    connect(&alice, "Atzr|alice").await;
    let acc = alice.account().await;
    let wf_a = alice
        .workflow(&alice.instance(&acc, "amcalice", 5).await, SQL, json!({}))
        .await;
    let mut bob = sys.client();
    bob.register_and_login("bob@example.com").await;
    connect(&bob, "Atzr|bob").await;
    let acc_b = bob.account().await;
    let wf_b = bob
        .workflow(&bob.instance(&acc_b, "amcbob", 5).await, SQL, json!({}))
        .await;

    // A run at AMC before the refresh token is revoked.
    let at_amc = alice.run(&wf_a, json!({"n": 1})).await;
    let running = wait_until(Duration::from_secs(15), || {
        let (a, id) = (&alice, &at_amc);
        async move { execution(a, id).await["status"] == "running" }
    })
    .await;
    assert!(running, "{}", execution(&alice, &at_amc).await);
    let amc_id = execution(&alice, &at_amc).await["amc_execution_id"].clone();
    assert!(amc_id.is_string());
    sys.sim_admin("revoke", json!({"refresh_token": "Atzr|alice"}))
        .await
        .unwrap();
    let bobs = bob.run(&wf_b, json!({"n": 2})).await;

    // Its next check meets the revoked token: the connection needs re-authorising.
    let marked = wait_until(Duration::from_secs(15), || {
        let a = &alice;
        async move { a.get("/amazon/connection").await.1["status"] == "reauth_required" }
    })
    .await;
    assert!(marked, "{}", alice.get("/amazon/connection").await.1);
    let (_, conn) = alice.get("/amazon/connection").await;
    assert!(conn["last_error"].is_string(), "{conn}");

    // A new run (not yet at AMC) fails with the reason.
    let fresh = alice.run(&wf_a, json!({"n": 3})).await;
    let ended = alice
        .wait_terminal(std::slice::from_ref(&fresh), Duration::from_secs(20))
        .await;
    assert_eq!(ended[0]["status"], "failed", "{}", ended[0]);
    assert_eq!(ended[0]["error"]["code"], "reauth_required", "{}", ended[0]);

    // The run at AMC keeps its id and waits (next check far out), still running.
    let parked = wait_until(Duration::from_secs(10), || {
        let (a, id, sys) = (&alice, &at_amc, &sys);
        async move {
            let e = execution(a, id).await;
            e["status"] == "running" && next_check_far(sys, id).await
        }
    })
    .await;
    let e = execution(&alice, &at_amc).await;
    assert!(parked, "{e}");
    assert_eq!(e["amc_execution_id"], amc_id);

    // Another user's run is untouched.
    let b = bob
        .wait_terminal(std::slice::from_ref(&bobs), Duration::from_secs(30))
        .await;
    assert_all_succeeded(&b);
    assert_eq!(bob.get("/amazon/connection").await.1["status"], "active");

    // One event for the connection.
    let db = sys.db.connect().await.unwrap();
    let r = db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT count(*) AS n FROM events WHERE event_type = 'connection.reauth_required'",
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.try_get::<i64>("", "n").unwrap(), 1);

    // Re-authorising brings the parked check forward: it finishes well before AMP_POLL_MAX.
    let (_, c2) = alice
        .put(
            "/amazon/connection",
            json!({"refresh_token": "Atzr|alice-again"}),
        )
        .await;
    assert_eq!(c2["status"], "active", "{c2}");
    let done = alice
        .wait_terminal(std::slice::from_ref(&at_amc), Duration::from_secs(20))
        .await;
    assert_all_succeeded(&done);
    assert_eq!(done[0]["amc_execution_id"], amc_id, "the same AMC run");
    let per = crate::runs_per_sql(&sys.sim_stats().await.unwrap());
    assert_eq!(per.get(&crate::rendered(1)).copied(), Some(1));
    sys.cleanup().await;
}

/// True when the execution's next check is more than 30 s away (parked at AMP_POLL_MAX).
async fn next_check_far(sys: &System, id: &str) -> bool {
    let Ok(db) = sys.db.connect().await else {
        return false;
    };
    let Ok(id) = uuid::Uuid::parse_str(id) else {
        return false;
    };
    db.query_one_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT next_check_at > now() + interval '30 seconds' AS far FROM executions WHERE id = $1",
        [id.into()],
    ))
    .await
    .ok()
    .flatten()
    .and_then(|r| r.try_get::<bool>("", "far").ok())
    .unwrap_or(false)
}
