//! Every completion reaches both receivers: 1,000 executions and two endpoints, one of
//! which answers 503 to the first two attempts of every message. Every terminal event
//! reaches each endpoint; each delivery verifies with the reference library; the
//! `webhook-id` is the same on every attempt; nothing is accepted twice; the attempts
//! follow the configured schedule within its jitter (timed on a light load, where no
//! attempt waits in a queue).

use crate::{body, endpoint, runs, user};
use serde_json::json;
use std::collections::HashMap;
use std::time::Duration;
use testkit::{Behaviour, Receiver, System, SystemOptions};

#[tokio::test]
async fn every_completion_reaches_both_receivers_signed_and_retried() {
    let sys = System::start(SystemOptions {
        env: vec![
            ("AMP_WEBHOOK_RETRY_SCHEDULE", "500ms,1s".into()),
            ("AMP_WORKER_CONCURRENCY", "64".into()),
            ("AMP_DATABASE_MAX_CONNECTIONS", "24".into()),
        ],
        ..SystemOptions::default()
    })
    .await
    .expect("system");
    let (c, setup) = user(&sys, "both@example.com", 200).await;
    let steady = Receiver::start(Behaviour::Accept).await.unwrap();
    let flaky = Receiver::start(Behaviour::FailFirst(2)).await.unwrap();
    let terminal = json!([
        "execution.succeeded",
        "execution.failed",
        "execution.cancelled"
    ]);
    let (_, steady_secret) = endpoint(&c, &steady.url, terminal.clone()).await;
    let (flaky_id, flaky_secret) = endpoint(&c, &flaky.url, terminal).await;
    let ids = runs(&c, &setup.workflow_id, 1, 1_000).await;
    let ended = c.wait_terminal(&ids, Duration::from_secs(180)).await;
    assert!(
        ended.iter().all(|e| e["status"] == "succeeded"),
        "every run succeeded"
    );
    // Every run's terminal event reaches each receiver.
    let want: std::collections::HashSet<String> = ids.iter().cloned().collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let got = |r: &Receiver| r.accepted().len();
        if (got(&steady) >= 1_000 && got(&flaky) >= 1_000) || tokio::time::Instant::now() > deadline
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for (name, r) in [("steady", &steady), ("flaky", &flaky)] {
        let accepted: std::collections::HashSet<String> = r
            .received()
            .iter()
            .filter(|x| x.status == 200)
            .map(|x| body(x)["data"]["id"].as_str().unwrap().to_string())
            .collect();
        let missing: Vec<&String> = want.difference(&accepted).take(3).collect();
        let extra: Vec<&String> = accepted.difference(&want).take(3).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{name}: {} of {} delivered; missing e.g. {missing:?}, unexpected {extra:?}",
            accepted.len(),
            want.len()
        );
        assert_eq!(r.duplicates(), 0, "{name} accepted a message twice");
        assert!(
            r.received()
                .iter()
                .all(|x| body(x)["type"] == "execution.succeeded")
        );
    }
    // Signed as the reference implementation verifies (every attempt, failed ones too).
    let n = testkit::receiver::verify_with_reference(&steady_secret, &steady.received()).unwrap();
    assert_eq!(n, steady.received().len());
    let n = testkit::receiver::verify_with_reference(&flaky_secret, &flaky.received()).unwrap();
    assert_eq!(n, 3_000, "three attempts of each message");
    // The same webhook-id on each attempt; the attempts 500 ms then 1 s apart (±20 %,
    // plus the time an attempt takes to be picked up).
    let mut by_id: HashMap<String, Vec<&testkit::Received>> = HashMap::new();
    let flaky_got = flaky.received();
    for r in &flaky_got {
        by_id.entry(r.id().to_string()).or_default().push(r);
    }
    assert_eq!(by_id.len(), 1_000);
    let mut gaps = (Vec::new(), Vec::new());
    for tries in by_id.values() {
        assert_eq!(
            tries.len(),
            3,
            "{:?}",
            tries.iter().map(|t| t.status).collect::<Vec<_>>()
        );
        assert_eq!(
            tries.iter().map(|t| t.status).collect::<Vec<_>>(),
            [503, 503, 200]
        );
        gaps.0.push((tries[1].at - tries[0].at).as_secs_f64());
        gaps.1.push((tries[2].at - tries[1].at).as_secs_f64());
    }
    // Under this load an attempt may wait in the queue, but none comes before its
    // jittered delay (the timing within the jitter is checked on a light load below).
    for (planned, gs) in [(0.5, &gaps.0), (1.0, &gaps.1)] {
        let early: Vec<&f64> = gs.iter().filter(|g| **g < planned * 0.8 - 0.01).collect();
        assert!(
            early.is_empty(),
            "attempts before their {planned}s delay: {early:?}"
        );
    }
    // The log shows the attempts.
    let (s, log) = c
        .get(&format!("/webhooks/{flaky_id}/deliveries?limit=5"))
        .await;
    assert_eq!(s, 200, "{log}");
    let first = &log["items"][0];
    assert_eq!(first["status"], "delivered");
    assert_eq!(first["attempts"], 3);
    let (s, detail) = c
        .get(&format!(
            "/webhooks/{flaky_id}/deliveries/{}",
            first["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(s, 200, "{detail}");
    let codes: Vec<i64> = detail["attempt_log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status_code"].as_i64().unwrap())
        .collect();
    assert_eq!(codes, [503, 503, 200]);
    assert!(
        detail["attempt_log"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["trigger"] == "scheduled")
    );
    sys.cleanup().await;
}

#[tokio::test]
async fn retries_follow_the_schedule_within_its_jitter() {
    let sys = System::start(SystemOptions {
        env: vec![("AMP_WEBHOOK_RETRY_SCHEDULE", "1s,2s".into())],
        ..SystemOptions::default()
    })
    .await
    .expect("system");
    let (c, setup) = user(&sys, "schedule@example.com", 50).await;
    let flaky = Receiver::start(Behaviour::FailFirst(2)).await.unwrap();
    endpoint(&c, &flaky.url, json!(["execution.succeeded"])).await;
    let ids = runs(&c, &setup.workflow_id, 1, 20).await;
    c.wait_terminal(&ids, Duration::from_secs(60)).await;
    assert!(
        testkit::wait_until(Duration::from_secs(30), || {
            let r = flaky.clone();
            async move { r.accepted().len() >= 20 }
        })
        .await
    );
    let mut by_id: HashMap<String, Vec<testkit::Received>> = HashMap::new();
    for r in flaky.received() {
        by_id.entry(r.id().to_string()).or_default().push(r);
    }
    for tries in by_id.values() {
        assert_eq!(
            tries.iter().map(|t| t.status).collect::<Vec<_>>(),
            [503, 503, 200]
        );
        for (k, planned) in [(1, 1.0), (2, 2.0)] {
            let gap = (tries[k].at - tries[k - 1].at).as_secs_f64();
            assert!(
                (planned * 0.8 - 0.01..=planned * 1.2 + 0.3).contains(&gap),
                "attempt {k} came {gap:.3}s after the one before (schedule {planned}s ± 20 %)"
            );
        }
    }
    sys.cleanup().await;
}
