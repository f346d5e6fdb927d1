//! RUNBOOK "Rotate the encryption key" and "Rotate the JWT secret".
//!
//! Encryption: the system starts with key one, holding a connection's tokens and a webhook
//! endpoint's secret. A rolling restart puts key two in `AMP_ENCRYPTION_KEY` with key one
//! in `AMP_ENCRYPTION_KEY_PREVIOUS`; `migrate rotate-encryption-key` runs while runs flow;
//! then every process restarts with key two alone and the system still works: runs
//! succeed, an expired access token is refreshed with the stored refresh token, and
//! webhooks are signed with the endpoint's secret.
//!
//! JWT: tokens signed with the old secret stay valid while `AMP_JWT_SECRET_PREVIOUS` holds
//! it and are refused once it is gone; tokens signed with the new secret always work.

use crate::{assert_each_succeeded_once, start_runs, user};
use common::crypto::Cipher;
use common::webhook::sign::Secret;
use serde_json::json;
use std::time::Duration;
use testkit::{Behaviour, Receiver, System, SystemOptions, wait_until};

const KEY_ONE: &str = "MTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTE=";
const KEY_TWO: &str = "MjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjI=";

/// Restarts every process with the system's current `env`, one at a time: a new worker
/// and scheduler start before the old ones get SIGTERM, as a rolling update does.
async fn rolling_restart(sys: &mut System) {
    sys.restart_api().await.expect("api restart");
    let fresh = sys.spawn_worker().expect("worker");
    let mut old = std::mem::replace(&mut sys.workers[0], fresh);
    old.sigterm_and_wait().await.expect("old worker");
    let fresh = sys.spawn_scheduler().expect("scheduler");
    let mut old = std::mem::replace(&mut sys.schedulers[0], fresh);
    old.sigterm_and_wait().await.expect("old scheduler");
}

/// Every delivery received verifies with `secret`; returns how many there were.
fn verified(receiver: &Receiver, secret: &Secret) -> usize {
    let got = receiver.received();
    for r in &got {
        let ts: i64 = r.headers["webhook-timestamp"].parse().expect("timestamp");
        let want = secret.sign(r.id(), ts, &r.body);
        assert!(
            r.headers["webhook-signature"].split(' ').any(|s| s == want),
            "a delivery does not verify with the endpoint's secret: {:?}",
            r.headers
        );
    }
    got.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encryption_key_rotated_while_running_then_the_new_key_alone() {
    let mut opts = SystemOptions::default();
    opts.env.push(("AMP_ENCRYPTION_KEY", KEY_ONE.into()));
    let mut sys = System::start(opts).await.expect("system");
    let receiver = Receiver::start(Behaviour::Accept).await.expect("receiver");
    let (c, wf) = user(&sys, "keyrot", 10).await;
    let (s, b) = c
        .post(
            "/webhooks",
            json!({"url": receiver.url, "event_types": ["execution.succeeded"]}),
        )
        .await;
    assert_eq!(s, 201, "endpoint: {b}");
    let secret = Secret::parse(b["secret"].as_str().expect("secret")).expect("secret");
    let mut ids = start_runs(&c, &wf, 0, 10).await;

    // Step 1: key two current, key one previous, one process at a time.
    sys.env.insert("AMP_ENCRYPTION_KEY".into(), KEY_TWO.into());
    sys.env
        .insert("AMP_ENCRYPTION_KEY_PREVIOUS".into(), KEY_ONE.into());
    rolling_restart(&mut sys).await;
    ids.extend(start_runs(&c, &wf, 10, 20).await);

    // Step 2: re-encrypt while runs flow.
    let (ok, out, err) = sys
        .migrate(&["rotate-encryption-key"], &[])
        .await
        .expect("migrate");
    assert!(ok, "rotate-encryption-key failed: {out}{err}");
    assert!(
        out.contains("opened by neither key") && !out.contains("re-encrypted 0 row"),
        "rotation said: {out}"
    );
    let db = sys.db.connect().await.expect("db");
    let new_only = Cipher::from_base64_key(KEY_TWO).expect("key two");
    assert_eq!(
        common::keys::pending(&db, &new_only)
            .await
            .expect("pending"),
        0,
        "values still under key one after the rotation"
    );
    // Run twice, it finds nothing to do.
    let (ok, out, _) = sys
        .migrate(&["rotate-encryption-key"], &[])
        .await
        .expect("migrate");
    assert!(
        ok && out.contains("re-encrypted 0 row(s)"),
        "second rotation: {out}"
    );

    // Step 3: key two alone.
    sys.env.remove("AMP_ENCRYPTION_KEY_PREVIOUS");
    rolling_restart(&mut sys).await;
    let exchanges = |v: &serde_json::Value| v["token_exchanges"].as_u64().unwrap_or(0);
    let before = exchanges(&sys.sim_stats().await.expect("stats"));
    // The next create is refused for an expired token: the worker must open the stored
    // refresh token with key two to get a new one.
    sys.sim_admin(
        "faults",
        json!({"rules": [{"route": "create", "probability": 1.0, "times": 1,
                          "fault": {"kind": "expired_token"}}]}),
    )
    .await
    .expect("fault");
    ids.extend(start_runs(&c, &wf, 20, 30).await);
    let runs = c.wait_terminal(&ids, Duration::from_secs(90)).await;
    assert_each_succeeded_once(&sys, &runs).await;
    let stats = sys.sim_stats().await.expect("stats");
    assert!(
        exchanges(&stats) > before,
        "no token refresh after the expired token: {stats}"
    );
    assert!(
        wait_until(Duration::from_secs(20), || async {
            receiver.accepted().len() == 30
        })
        .await,
        "webhooks delivered: {}",
        receiver.accepted().len()
    );
    assert!(verified(&receiver, &secret) >= 30);

    // Without the old key, a process refuses nothing it stored: the migrate command also
    // refuses to run without the previous key.
    let (ok, _, err) = sys
        .migrate(&["rotate-encryption-key"], &[])
        .await
        .expect("migrate");
    assert!(!ok && err.contains("AMP_ENCRYPTION_KEY_PREVIOUS"), "{err}");
    sys.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_secret_rotation_keeps_old_tokens_until_the_previous_secret_goes() {
    let (one, two) = ("j".repeat(40), "k".repeat(40));
    let mut opts = SystemOptions {
        workers: 0,
        schedulers: 0,
        ..SystemOptions::default()
    };
    opts.env.push(("AMP_JWT_SECRET", one.clone()));
    let mut sys = System::start(opts).await.expect("system");
    let mut old = sys.client();
    old.register_and_login("jwtrot@example.com").await;
    assert_eq!(old.get("/me").await.0, 200);

    sys.env.insert("AMP_JWT_SECRET".into(), two.clone());
    sys.env
        .insert("AMP_JWT_SECRET_PREVIOUS".into(), one.clone());
    sys.restart_api().await.expect("api");
    let (s, b) = old.get("/me").await;
    assert_eq!(s, 200, "an old token during the rotation: {b}");
    let mut new = sys.client();
    let (s, b) = new
        .post(
            "/auth/login",
            json!({"email": "jwtrot@example.com", "password": "correct horse battery"}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    new.token = b["access_token"].as_str().map(str::to_string);
    assert_eq!(new.get("/me").await.0, 200);

    sys.env.remove("AMP_JWT_SECRET_PREVIOUS");
    sys.restart_api().await.expect("api");
    let (s, b) = old.get("/me").await;
    assert_eq!(s, 401, "an old token after the rotation: {b}");
    assert_eq!(new.get("/me").await.0, 200);

    // A previous secret too short stops the api with a message naming it.
    sys.env
        .insert("AMP_JWT_SECRET_PREVIOUS".into(), "short".into());
    let out = tokio::process::Command::new(testkit::bin_path("api"))
        .env_clear()
        .envs(&sys.env)
        .output()
        .await
        .expect("api");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("AMP_JWT_SECRET_PREVIOUS"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    sys.cleanup().await;
}
