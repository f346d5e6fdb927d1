//! Kills and restarts: with a worker SIGKILLed and Redis restarted empty while runs end
//! and their deliveries go out, every completion still reaches the receiver (which
//! dedups on `webhook-id`: a delivery in flight when its worker died may come twice).

use crate::{body, endpoint, runs, user};
use serde_json::json;
use std::time::Duration;
use testkit::{Behaviour, Receiver, System, SystemOptions};

#[tokio::test]
async fn a_killed_worker_and_an_empty_redis_lose_no_delivery() {
    let mut sys = System::start(SystemOptions {
        workers: 2,
        private_redis: true,
        env: vec![
            (
                "AMP_WEBHOOK_RETRY_SCHEDULE",
                "300ms,300ms,300ms,300ms".into(),
            ),
            ("AMP_RECONCILE_INTERVAL", "300ms".into()),
        ],
        ..SystemOptions::default()
    })
    .await
    .expect("system");
    let (c, setup) = user(&sys, "restarts@example.com", 100).await;
    let receiver = Receiver::start(Behaviour::FailFirst(1)).await.unwrap();
    endpoint(&c, &receiver.url, json!(["execution.succeeded"])).await;
    let ids = runs(&c, &setup.workflow_id, 1, 150).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    sys.workers[0].sigkill().await;
    sys.redis
        .as_mut()
        .expect("private redis")
        .restart()
        .await
        .expect("restart redis empty");
    let again = sys.spawn_worker().expect("worker");
    sys.workers.push(again);
    let ended = c.wait_terminal(&ids, Duration::from_secs(120)).await;
    assert!(
        ended.iter().all(|e| e["status"] == "succeeded"),
        "every run succeeded"
    );
    let want: std::collections::HashSet<String> = ids.iter().cloned().collect();
    let ok = testkit::wait_until(Duration::from_secs(60), || {
        let r = receiver.clone();
        async move { r.accepted().len() >= 150 }
    })
    .await;
    assert!(ok, "only {} of 150 delivered", receiver.accepted().len());
    let delivered: std::collections::HashSet<String> = receiver
        .received()
        .iter()
        .filter(|r| r.status == 200)
        .map(|r| body(r)["data"]["id"].as_str().unwrap().to_string())
        .collect();
    assert!(
        delivered == want,
        "{} of {} delivered",
        delivered.len(),
        want.len()
    );
    sys.cleanup().await;
}
