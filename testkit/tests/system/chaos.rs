//! The chaos run: 300 executions over three instances (caps 3, 4, 5), two workers, amc-sim
//! throttling, failing, losing create answers and failing runs, 30-second access tokens;
//! each worker SIGKILLed once and Redis restarted empty once. Every execution ends
//! terminal with the right outcome, AMC holds one run per execution, never more active
//! than a cap, and tokens are exchanged no more often than their lifetime requires.

use crate::{SQL, assert_outcomes_match_amc};
use amc_sim::faults::FaultsDoc;
use serde_json::json;
use std::time::{Duration, Instant};
use testkit::{Client, System, SystemOptions};

const RUNS: u64 = 300;
const TOKEN_TTL_SECS: u64 = 30;

async fn terminal_count(c: &Client, ids: &[String]) -> usize {
    let mut n = 0;
    for id in ids {
        if matches!(
            c.get(&format!("/executions/{id}")).await.1["status"].as_str(),
            Some("succeeded" | "failed" | "cancelled")
        ) {
            n += 1;
        }
    }
    n
}

async fn wait_terminal_share(c: &Client, ids: &[String], share: f64) {
    let deadline = Instant::now() + Duration::from_secs(240);
    while (terminal_count(c, ids).await as f64) < share * ids.len() as f64
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn used_memory(url: &str) -> i64 {
    let client = redis::Client::open(url).expect("redis url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(&mut conn)
        .await
        .expect("info");
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("used_memory")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_run_ends_every_execution_right_with_one_amc_run_each() {
    let throttle = |route: &str| json!({"route": route, "probability": 0.1, "fault": {"kind": "too_many_requests", "retry_after_secs": 1}});
    let plan = json!({"seed": 7, "rules": [
        throttle("create"), throttle("get"), throttle("download_urls"),
        {"route": "create", "probability": 0.03, "fault": {"kind": "lost_answer", "mode": "bad_gateway"}},
        {"route": "create", "probability": 0.05, "fault": {"kind": "server_error", "status": 500}},
        {"route": "get", "probability": 0.05, "fault": {"kind": "gateway_timeout"}},
        {"route": "run", "probability": 0.05, "fault": {"kind": "failed"}},
    ]});
    let doc = FaultsDoc::from_value(&plan).expect("fault plan");
    let mut opts = SystemOptions {
        workers: 2,
        private_redis: true,
        ..SystemOptions::default()
    };
    opts.sim.faults = doc.plan;
    opts.sim.seed = doc.seed.expect("seed");
    opts.sim.token_ttl = Duration::from_secs(TOKEN_TTL_SECS);
    opts.sim.run_duration = Duration::from_millis(500);
    opts.env.push(("AMP_AMC_TIMEOUT", "2s".into()));
    opts.env.push(("AMP_MAX_ATTEMPTS", "30".into()));
    let mut sys = System::start(opts).await.expect("system");
    let redis_url = sys.redis_url.clone();
    let memory_before = used_memory(&redis_url).await;
    let started = Instant::now();

    let mut c = sys.client();
    c.register_and_login("chaos@example.com").await;
    let (s, _) = c
        .put("/amazon/connection", json!({"refresh_token": "Atzr|chaos"}))
        .await;
    assert_eq!(s, 200);
    let account = c.account().await;
    let caps = [("amcchaos3", 3u64), ("amcchaos4", 4), ("amcchaos5", 5)];
    let mut workflows = Vec::new();
    for (name, cap) in caps {
        let instance = c.instance(&account, name, cap as u32).await;
        workflows.push(c.workflow(&instance, SQL, json!({})).await);
    }
    let mut ids = Vec::new();
    for n in 0..RUNS {
        ids.push(c.run(&workflows[(n % 3) as usize], json!({"n": n})).await);
    }

    wait_terminal_share(&c, &ids, 0.2).await;
    sys.workers[0].sigkill().await;
    let w = sys.spawn_worker().expect("worker");
    sys.workers.push(w);
    wait_terminal_share(&c, &ids, 0.45).await;
    sys.redis
        .as_mut()
        .expect("private redis")
        .restart()
        .await
        .expect("restart redis empty");
    wait_terminal_share(&c, &ids, 0.7).await;
    sys.workers[1].sigkill().await;
    let w = sys.spawn_worker().expect("worker");
    sys.workers.push(w);

    let runs = c.wait_terminal(&ids, Duration::from_secs(300)).await;
    let elapsed = started.elapsed();
    let stats = sys.sim_stats().await.expect("sim stats");

    // One AMC run each; each failed one carries AMC's reason; the rest succeeded with AMC's rows.
    assert_eq!(runs.len() as u64, RUNS);
    let failed = assert_outcomes_match_amc(&runs, &stats);
    assert!(failed > 0, "the seed fails some runs");
    // Never more active at AMC than a cap.
    for (name, cap) in caps {
        let peak = stats["peak_active"][name].as_u64().expect("peak");
        assert!(peak <= cap, "{name}: peak {peak} over cap {cap}");
    }
    // Tokens: one exchange per lifetime (refreshed a twelfth ahead), plus the PUT's.
    let exchanges = stats["token_exchanges"].as_u64().expect("exchanges");
    let allowed = elapsed.as_secs() / (TOKEN_TTL_SECS * 11 / 12) + 2;
    assert!(
        exchanges <= allowed,
        "{exchanges} token exchanges in {elapsed:?} (allowed {allowed})"
    );
    // Nothing finished is left in Redis.
    let settle = Instant::now() + Duration::from_secs(10);
    let mut memory_after = used_memory(&redis_url).await;
    while (memory_after - memory_before).abs() > 1_000_000 && Instant::now() < settle {
        tokio::time::sleep(Duration::from_millis(500)).await;
        memory_after = used_memory(&redis_url).await;
    }
    assert!(
        (memory_after - memory_before).abs() <= 1_000_000,
        "Redis used_memory {memory_before} → {memory_after}"
    );
    eprintln!(
        "chaos: {RUNS} runs, {failed} failed at AMC, {exchanges} token exchanges in {elapsed:?}, faults {}",
        stats["faults_injected"]
    );
    sys.cleanup().await;
}
