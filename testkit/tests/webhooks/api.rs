//! The API's answers: private addresses refused when they are not allowed (a literal
//! loopback, the cloud metadata address, a name that resolves to a private address) and
//! checked again by the worker at connection time; every bad field a 422 naming it; an
//! unknown or unsubscribable event type named; another user's endpoint 404.

use crate::{endpoint, user};
use serde_json::{Value, json};
use std::time::Duration;
use testkit::{Behaviour, Receiver, System, SystemOptions};

#[tokio::test]
async fn private_addresses_bad_input_and_other_users() {
    let sys = System::start(SystemOptions {
        env: vec![("AMP_WEBHOOK_ALLOW_PRIVATE", "false".into())],
        ..SystemOptions::default()
    })
    .await
    .expect("system");
    let (c, setup) = user(&sys, "apiwh@example.com", 10).await;
    let types = json!(["execution.succeeded"]);
    for url in [
        "http://127.0.0.1:9/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://localhost:9/",
        "http://[::1]/",
    ] {
        let (s, b) = c
            .post("/webhooks", json!({"url": url, "event_types": types}))
            .await;
        assert_eq!(
            (s, b["errors"][0]["field"].as_str()),
            (422, Some("url")),
            "{url}: {b}"
        );
    }
    // A delivery to a private address is refused when it connects (a row written past the
    // API, as a rebinding name would be by the time it is resolved).
    let receiver = Receiver::start(Behaviour::Accept).await.unwrap();
    let public = "https://hooks.example.invalid/x";
    let (id, _) = endpoint(&c, public, types.clone()).await;
    let db = sys.db.connect().await.expect("db");
    let local = receiver.url.replace("127.0.0.1", "localhost");
    sea_orm::ConnectionTrait::execute_unprepared(
        &db,
        &format!("UPDATE webhook_endpoints SET url = '{local}' WHERE id = '{id}'"),
    )
    .await
    .unwrap();
    let run = c.run(&setup.workflow_id, json!({"n": 1})).await;
    c.wait_terminal(&[run], Duration::from_secs(30)).await;
    let refused = testkit::wait_until(Duration::from_secs(10), || {
        let c = c.clone();
        let id = id.clone();
        async move {
            let (_, log) = c.get(&format!("/webhooks/{id}/deliveries")).await;
            log["items"][0]["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("private"))
        }
    })
    .await;
    assert!(
        refused,
        "the worker refused a name resolving to a private address"
    );
    assert!(
        receiver.received().is_empty(),
        "nothing reached the private address"
    );

    let bad: Vec<(Value, &str)> = vec![
        (json!({"event_types": types}), "url"),
        (
            json!({"url": "ftp://x.example/", "event_types": types}),
            "url",
        ),
        (json!({"url": "not a url", "event_types": types}), "url"),
        (json!({"url": 5, "event_types": types}), "url"),
        (json!({"url": public}), "event_types"),
        (json!({"url": public, "event_types": []}), "event_types"),
        (
            json!({"url": public, "event_types": ["execution.exploded"]}),
            "event_types",
        ),
        (
            json!({"url": public, "event_types": ["execution.running"]}),
            "event_types",
        ),
        (
            json!({"url": public, "event_types": "execution.succeeded"}),
            "event_types",
        ),
        (
            json!({"url": public, "event_types": types, "enabled": "yes"}),
            "enabled",
        ),
        (
            json!({"url": public, "event_types": types, "description": "a\u{0}b"}),
            "description",
        ),
    ];
    for (body, field) in bad {
        let (s, b) = c.post("/webhooks", body.clone()).await;
        assert_eq!(
            (s, b["errors"][0]["field"].as_str()),
            (422, Some(field)),
            "{body} → {b}"
        );
    }
    let (s, b) = c
        .post(
            "/webhooks",
            json!({"url": public, "event_types": ["execution.exploded"]}),
        )
        .await;
    assert!(
        b["detail"].as_str().unwrap().contains("execution.exploded"),
        "{s} {b}"
    );
    let (s, b) = c
        .post(
            &format!("/webhooks/{id}/recover"),
            json!({"since": "yesterday"}),
        )
        .await;
    assert_eq!(
        (s, b["errors"][0]["field"].as_str()),
        (422, Some("since")),
        "{b}"
    );

    // Another user sees none of it.
    let mut other = sys.client();
    other.register_and_login("otherwh@example.com").await;
    for path in [
        format!("/webhooks/{id}"),
        format!("/webhooks/{id}/deliveries"),
    ] {
        let (s, b) = other.get(&path).await;
        assert_eq!(s, 404, "{path}: {b}");
    }
    for action in ["rotate-secret", "test"] {
        let (s, b) = other
            .post(&format!("/webhooks/{id}/{action}"), json!({}))
            .await;
        assert_eq!(s, 404, "{action}: {b}");
    }
    let (s, _) = other
        .post(
            &format!("/webhooks/{id}/recover"),
            json!({"since": "2026-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(s, 404);
    let (s, _) = other
        .patch(&format!("/webhooks/{id}"), json!({"enabled": false}))
        .await;
    assert_eq!(s, 404);
    let (s, _) = other.delete(&format!("/webhooks/{id}")).await;
    assert_eq!(s, 404);
    let (_, list) = other.get("/webhooks").await;
    assert_eq!(list["items"], json!([]));
    // The owner lists it, without its secret, and deletes it.
    let (_, list) = c.get("/webhooks").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert!(list["items"][0].get("secret").is_none());
    let (s, _) = c.delete(&format!("/webhooks/{id}")).await;
    assert_eq!(s, 204);
    sys.cleanup().await;
}
