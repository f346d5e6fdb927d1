//! Admission in Postgres: per-instance caps are reached and never exceeded at AMC.

use crate::{SQL, assert_all_succeeded};
use serde_json::json;
use std::time::Duration;
use testkit::{System, SystemOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_runs_on_caps_two_and_three_all_succeed_at_exactly_the_cap() {
    let sys = System::start(SystemOptions::default())
        .await
        .expect("system");
    let mut c = sys.client();
    c.register_and_login("caps@example.com").await;
    let (s, _) = c
        .put("/amazon/connection", json!({"refresh_token": "Atzr|caps"}))
        .await;
    assert_eq!(s, 200);
    let account = c.account().await;
    let wf_a = c
        .workflow(&c.instance(&account, "amccapa", 2).await, SQL, json!({}))
        .await;
    let wf_b = c
        .workflow(&c.instance(&account, "amccapb", 3).await, SQL, json!({}))
        .await;
    let mut ids = Vec::new();
    for n in 0..60u64 {
        let wf = if n % 2 == 0 { &wf_a } else { &wf_b };
        ids.push(c.run(wf, json!({"n": n})).await);
    }
    let runs = c.wait_terminal(&ids, Duration::from_secs(180)).await;
    assert_all_succeeded(&runs);
    let stats = sys.sim_stats().await.unwrap();
    assert_eq!(
        stats["peak_active"]["amccapa"].as_u64(),
        Some(2),
        "{}",
        stats["peak_active"]
    );
    assert_eq!(
        stats["peak_active"]["amccapb"].as_u64(),
        Some(3),
        "{}",
        stats["peak_active"]
    );
    assert_eq!(
        stats["creates"].as_u64(),
        Some(60),
        "one AMC run per execution"
    );
    sys.cleanup().await;
}
