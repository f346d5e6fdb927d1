//! Disabling and recovery: an endpoint down past the disable rule (short settings) is
//! disabled with `webhook.endpoint_disabled`; its later messages are `skipped`; enabled
//! again, `recover` delivers every one, each verifiable with a fresh timestamp and its
//! first `webhook-id`. Secret rotation: after `rotate-secret`, deliveries verify with the
//! old and with the new secret.

use crate::{endpoint, runs, user};
use serde_json::json;
use std::time::Duration;
use testkit::{Behaviour, Receiver, System, SystemOptions};

#[tokio::test]
async fn a_dead_endpoint_is_disabled_skipped_and_recovered() {
    let sys = System::start(SystemOptions {
        env: vec![
            (
                "AMP_WEBHOOK_RETRY_SCHEDULE",
                "200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms".into(),
            ),
            ("AMP_WEBHOOK_DISABLE_AFTER", "1500ms".into()),
        ],
        ..SystemOptions::default()
    })
    .await
    .expect("system");
    let (c, setup) = user(&sys, "disable@example.com", 50).await;
    let receiver = Receiver::start(Behaviour::Always(500)).await.unwrap();
    let (id, secret) = endpoint(&c, &receiver.url, json!(["execution.succeeded"])).await;
    let first = runs(&c, &setup.workflow_id, 1, 3).await;
    c.wait_terminal(&first, Duration::from_secs(30)).await;
    let disabled = testkit::wait_until(Duration::from_secs(20), || {
        let c = c.clone();
        let id = id.clone();
        async move { c.get(&format!("/webhooks/{id}")).await.1["enabled"] == false }
    })
    .await;
    assert!(disabled, "the endpoint was disabled by the rule");
    let (_, ep) = c.get(&format!("/webhooks/{id}")).await;
    assert!(
        ep["disabled_reason"]
            .as_str()
            .unwrap()
            .contains("AMP_WEBHOOK_DISABLE_AFTER"),
        "{ep}"
    );
    let db = sys.db.connect().await.expect("db");
    let events = sea_orm::ConnectionTrait::query_all_raw(
        &db,
        sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            format!("SELECT 1 FROM events WHERE event_type = 'webhook.endpoint_disabled' AND subject_id = '{id}'"),
        ),
    )
    .await
    .unwrap();
    assert_eq!(events.len(), 1, "webhook.endpoint_disabled recorded once");
    // Later messages are kept as skipped, not dropped.
    let later = runs(&c, &setup.workflow_id, 10, 3).await;
    c.wait_terminal(&later, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, log) = c.get(&format!("/webhooks/{id}/deliveries?limit=100")).await;
    let statuses: Vec<&str> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses.len(), 6, "{log}");
    assert_eq!(
        statuses.iter().filter(|s| **s == "skipped").count(),
        6,
        "{statuses:?}"
    );
    let before_recovery = receiver.received().len();
    let ids_before: std::collections::HashSet<String> = receiver
        .received()
        .iter()
        .map(|r| r.id().to_string())
        .collect();
    // Enabled again and the receiver fixed: recover delivers every one.
    receiver.set(Behaviour::Accept);
    let (s, b) = c
        .patch(&format!("/webhooks/{id}"), json!({"enabled": true}))
        .await;
    assert_eq!((s, b["enabled"].as_bool()), (200, Some(true)), "{b}");
    assert!(b["disabled_reason"].is_null());
    let since = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    let (s, r) = c
        .post(&format!("/webhooks/{id}/recover"), json!({"since": since}))
        .await;
    assert_eq!((s, r["recovered"].as_u64()), (202, Some(6)), "{r}");
    let ok = testkit::wait_until(Duration::from_secs(20), || {
        let r = receiver.clone();
        async move { r.accepted().len() >= 6 }
    })
    .await;
    assert!(ok, "recovered: {}", receiver.accepted().len());
    let recovered: Vec<testkit::Received> = receiver.received()[before_recovery..].to_vec();
    assert!(recovered.iter().all(|r| r.status == 200));
    assert_eq!(
        testkit::receiver::verify_with_reference(&secret, &recovered).unwrap(),
        6
    );
    // The first three keep the webhook-id they failed with; timestamps are fresh.
    for r in &recovered {
        let ts: i64 = r.headers["webhook-timestamp"].parse().unwrap();
        assert!(
            (chrono::Utc::now().timestamp() - ts).abs() < 30,
            "a fresh timestamp"
        );
    }
    let recovered_ids: std::collections::HashSet<String> =
        recovered.iter().map(|r| r.id().to_string()).collect();
    assert_eq!(ids_before.intersection(&recovered_ids).count(), 3);
    let (_, log) = c.get(&format!("/webhooks/{id}/deliveries?limit=100")).await;
    let d = &log["items"][0];
    let (_, detail) = c
        .get(&format!(
            "/webhooks/{id}/deliveries/{}",
            d["id"].as_str().unwrap()
        ))
        .await;
    let log = detail["attempt_log"].as_array().unwrap();
    assert_eq!(log.last().unwrap()["trigger"], "manual", "{detail}");
    sys.cleanup().await;
}

#[tokio::test]
async fn after_a_rotation_both_secrets_verify() {
    let sys = System::start(SystemOptions::default())
        .await
        .expect("system");
    let (c, setup) = user(&sys, "rotate@example.com", 50).await;
    let receiver = Receiver::start(Behaviour::Accept).await.unwrap();
    let (id, old) = endpoint(&c, &receiver.url, json!(["execution.succeeded"])).await;
    let (s, b) = c
        .post(&format!("/webhooks/{id}/rotate-secret"), json!({}))
        .await;
    assert_eq!(s, 200, "{b}");
    let new = b["secret"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    let ids = runs(&c, &setup.workflow_id, 1, 2).await;
    c.wait_terminal(&ids, Duration::from_secs(30)).await;
    assert!(
        testkit::wait_until(Duration::from_secs(10), || {
            let r = receiver.clone();
            async move { r.accepted().len() >= 2 }
        })
        .await
    );
    let got = receiver.received();
    assert!(
        got.iter()
            .all(|r| r.headers["webhook-signature"].split(' ').count() == 2)
    );
    assert_eq!(
        testkit::receiver::verify_with_reference(&old, &got).unwrap(),
        got.len()
    );
    assert_eq!(
        testkit::receiver::verify_with_reference(&new, &got).unwrap(),
        got.len()
    );
    // A test message reaches this endpoint alone.
    let other = Receiver::start(Behaviour::Accept).await.unwrap();
    endpoint(&c, &other.url, json!(["execution.succeeded"])).await;
    let (s, t) = c.post(&format!("/webhooks/{id}/test"), json!({})).await;
    assert_eq!(s, 202, "{t}");
    assert!(
        testkit::wait_until(Duration::from_secs(10), || {
            let r = receiver.clone();
            async move {
                r.received()
                    .iter()
                    .any(|x| crate::body(x)["type"] == "webhook.test")
            }
        })
        .await
    );
    assert!(
        other
            .received()
            .iter()
            .all(|x| crate::body(x)["type"] != "webhook.test")
    );
    sys.cleanup().await;
}
