//! Isolation: an endpoint that answers after 20 s does not delay another endpoint's
//! deliveries (the fast endpoint's p99 delivery lag stays under 1 s).

use crate::{body, endpoint, runs, user};
use serde_json::json;
use std::time::Duration;
use testkit::{Behaviour, Receiver, System, SystemOptions};

#[tokio::test]
async fn a_slow_endpoint_does_not_hold_up_another() {
    let sys = System::start(SystemOptions {
        env: vec![
            ("AMP_WEBHOOK_TIMEOUT", "25s".into()),
            ("AMP_WORKER_CONCURRENCY", "16".into()),
        ],
        ..SystemOptions::default()
    })
    .await
    .expect("system");
    let (c, setup) = user(&sys, "isolation@example.com", 100).await;
    let slow = Receiver::start(Behaviour::Slow(Duration::from_secs(20)))
        .await
        .unwrap();
    let fast = Receiver::start(Behaviour::Accept).await.unwrap();
    endpoint(&c, &slow.url, json!(["execution.succeeded"])).await;
    let (fast_id, _) = endpoint(&c, &fast.url, json!(["execution.succeeded"])).await;
    let ids = runs(&c, &setup.workflow_id, 1, 60).await;
    let ended = c.wait_terminal(&ids, Duration::from_secs(60)).await;
    assert!(ended.iter().all(|e| e["status"] == "succeeded"));
    assert!(
        testkit::wait_until(Duration::from_secs(15), || {
            let r = fast.clone();
            async move { r.accepted().len() >= 60 }
        })
        .await,
        "fast endpoint got {}",
        fast.accepted().len()
    );
    // Lag: a run's completion (its event's time) to the fast receiver's request.
    let db = sys.db.connect().await.expect("db");
    let mut lags = Vec::new();
    for r in fast.received() {
        let id = body(&r)["data"]["id"].as_str().unwrap().to_string();
        let row = sea_orm::ConnectionTrait::query_one_raw(
            &db,
            sea_orm::Statement::from_string(
                sea_orm::DbBackend::Postgres,
                format!(
                    "SELECT extract(epoch FROM now() - e.created_at)::float8 AS ago FROM events e \
                     WHERE e.subject_id = '{id}' AND e.event_type = 'execution.succeeded'"
                ),
            ),
        )
        .await
        .unwrap()
        .unwrap();
        let ago: f64 = row.try_get("", "ago").unwrap();
        let received_ago = r.at.elapsed().as_secs_f64();
        lags.push(ago - received_ago);
    }
    lags.sort_by(f64::total_cmp);
    let p99 = lags[(lags.len() * 99 / 100).min(lags.len() - 1)];
    assert!(
        p99 < 1.0,
        "the fast endpoint's p99 delivery lag was {p99:.3} s"
    );
    // The slow endpoint's deliveries are still pending or under way, not lost.
    let (_, log) = c
        .get(&format!("/webhooks/{fast_id}/deliveries?limit=500"))
        .await;
    assert!(
        log["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["status"] == "delivered")
    );
    sys.cleanup().await;
}
