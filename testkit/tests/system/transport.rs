//! Transport guarantees of a real worker on a private redis-server: losing its Redis
//! connections fails `/healthz` and it consumes again within 5 s; dead jobs end up in
//! Postgres (`dead_jobs`) and nothing finished stays in Redis.
//! (50,000 jobs exactly once + `used_memory` back: `queue/tests/scale.rs`.)

use common::jobs::PollJob;
use queue::Job;
use queue::{Producer, QueueConfig};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use std::time::{Duration, Instant};
use testkit::{System, SystemOptions, wait_until};

async fn producer(sys: &System) -> Producer {
    Producer::connect(QueueConfig::new(sys.redis_url.clone(), sys.prefix.clone()))
        .await
        .expect("producer")
}

/// True when the queue holds nothing: no queued, running, delayed or dead entry.
async fn empty(p: &Producer, queue: &str) -> bool {
    p.stats(queue)
        .await
        .map(|s| (s.queued, s.running, s.scheduled, s.dead) == (0, 0, 0, 0))
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_kill_fails_healthz_then_the_worker_consumes_again() {
    let mut sys = System::start(SystemOptions {
        workers: 0,
        private_redis: true,
        ..SystemOptions::default()
    })
    .await
    .expect("system");
    let (w, health) = sys.spawn_worker_with(&[]);
    sys.workers.push(w);
    assert!(
        wait_until(Duration::from_secs(15), || sys.healthy(&health)).await,
        "worker never healthy"
    );
    let p = producer(&sys).await;
    let client = redis::Client::open(sys.redis_url.as_str()).expect("redis url");
    let mut admin = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis");

    // Cut every client connection; keep Redis unanswering for 2 s so the outage is visible.
    let killed = Instant::now();
    let _: redis::Value = redis::pipe()
        .cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("normal")
        .arg("SKIPME")
        .arg("yes")
        .cmd("CLIENT")
        .arg("PAUSE")
        .arg(2000)
        .arg("ALL")
        .query_async(&mut admin)
        .await
        .expect("client kill");
    let failed = wait_until(Duration::from_secs(2), || async {
        !sys.healthy(&health).await
    })
    .await;
    assert!(failed, "/healthz kept answering 200 without Redis");

    let job = PollJob::new(common::ids::ExecutionId::new(), None);
    // The test's own connection was cut too: its first command fails, then it reconnects.
    let mut pushed = false;
    for _ in 0..50 {
        if p.enqueue(&job).await.is_ok() {
            pushed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(pushed, "cannot push after the kill");
    let back = wait_until(
        Duration::from_secs(5).saturating_sub(killed.elapsed()),
        || async { sys.healthy(&health).await && empty(&p, PollJob::QUEUE).await },
    )
    .await;
    assert!(back, "worker did not consume again within 5 s of the kill");
    eprintln!("consuming again {:?} after CLIENT KILL", killed.elapsed());
    sys.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_jobs_are_kept_in_postgres_and_leave_redis() {
    let sys = System::start(SystemOptions {
        workers: 1,
        ..SystemOptions::default()
    })
    .await
    .expect("system");
    let p = producer(&sys).await;
    p.push_raw(PollJob::QUEUE, br#"{"not":"a step job"}"#.to_vec())
        .await
        .expect("push");
    let db = sys.db.connect().await.expect("db");
    let stored = wait_until(Duration::from_secs(15), || {
        let db = db.clone();
        async move {
            db.query_one_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT 1 AS one FROM dead_jobs WHERE queue = 'execution.poll' \
                 AND payload = '{\"not\":\"a step job\"}'::jsonb AND error LIKE '%decode%' AND attempts = 1",
            ))
            .await
            .ok()
            .flatten()
            .is_some()
        }
    })
    .await;
    assert!(stored, "the dead job is not in dead_jobs");
    assert!(
        wait_until(Duration::from_secs(5), || empty(&p, PollJob::QUEUE)).await,
        "Redis still holds the dead job: {:?}",
        p.stats(PollJob::QUEUE).await
    );
    sys.cleanup().await;
}
