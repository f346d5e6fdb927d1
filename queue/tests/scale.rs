//! Transport at scale and hand-back of running jobs, on a private redis-server (so
//! `used_memory` is not disturbed by other tests).

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use apalis_core::error::BoxDynError;
use apalis_core::task::data::Data;
use apalis_core::worker::builder::WorkerBuilder;
use queue::{HeldJob, Producer, QueueConfig, RedisBackend, RedisWorkerExt};
use support::{Job, PrivateRedis, cleanup, config, wait_until};
use tokio::sync::Notify;

const N: usize = 50_000;

#[derive(Clone)]
struct Counts {
    runs: Arc<Vec<AtomicU8>>,
    total: Arc<AtomicUsize>,
    done: Arc<Notify>,
}

async fn count(job: Job, c: Data<Counts>) -> Result<(), BoxDynError> {
    c.runs[job.seq as usize].fetch_add(1, Ordering::Relaxed);
    if c.total.fetch_add(1, Ordering::AcqRel) + 1 == c.runs.len() {
        c.done.notify_one();
    }
    Ok(())
}

async fn used_memory(url: &str) -> i64 {
    let c = redis::Client::open(url).unwrap();
    let mut conn = c.get_multiplexed_async_connection().await.unwrap();
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(&mut conn)
        .await
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("used_memory in INFO")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_thousand_jobs_run_exactly_once_and_memory_returns() {
    let redis = PrivateRedis::start();
    let cfg = config(&redis.url());
    let p = Producer::connect(cfg.clone()).await.unwrap();
    let q = "t.scale";
    let before = used_memory(&redis.url()).await;

    let counts = Counts {
        runs: Arc::new((0..N).map(|_| AtomicU8::new(0)).collect()),
        total: Arc::new(AtomicUsize::new(0)),
        done: Arc::new(Notify::new()),
    };
    let started = Instant::now();
    let jobs: Vec<Job> = (0..N as u32).map(Job::seq).collect();
    p.push_batch(q, &jobs).await.unwrap();
    drop(jobs);
    let worker = WorkerBuilder::new("scale")
        .backend(RedisBackend::<Job>::new(cfg.clone(), q).unwrap())
        .concurrency(64)
        .data(counts.clone())
        .build(count);
    let done = counts.done.clone();
    tokio::time::timeout(
        Duration::from_secs(60),
        worker.run_until(async move {
            done.notified().await;
            Ok::<(), std::io::Error>(())
        }),
    )
    .await
    .unwrap_or_else(|_| {
        panic!(
            "only {} of {N} jobs ran within 60 s",
            counts.total.load(Ordering::Acquire)
        )
    })
    .unwrap();
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(60), "took {elapsed:?}");
    let twice = counts
        .runs
        .iter()
        .filter(|c| c.load(Ordering::Relaxed) != 1)
        .count();
    assert_eq!(twice, 0, "jobs that did not run exactly once");

    let st = p.stats(q).await.unwrap();
    assert_eq!((st.queued, st.running, st.scheduled, st.dead), (0, 0, 0, 0));
    let after = used_memory(&redis.url()).await;
    assert!(
        after - before < 1024 * 1024,
        "used_memory grew from {before} to {after}"
    );
    eprintln!("{N} jobs in {elapsed:?}; used_memory {before} -> {after}");
    cleanup(&p).await;
}

async fn stuck(_job: Job, started: Data<Arc<AtomicUsize>>) -> Result<(), BoxDynError> {
    started.fetch_add(1, Ordering::AcqRel);
    tokio::time::sleep(Duration::from_secs(3600)).await;
    Ok(())
}

async fn record(job: Job, seen: Data<Arc<std::sync::Mutex<Vec<u32>>>>) -> Result<(), BoxDynError> {
    seen.lock().unwrap().push(job.seq);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_jobs_can_be_handed_back_with_new_payloads() {
    let redis = PrivateRedis::start();
    let cfg = QueueConfig {
        claim_idle: Duration::from_secs(600),
        ..config(&redis.url())
    };
    let p = Producer::connect(cfg.clone()).await.unwrap();
    let q = "t.handback_running";
    let backend = RedisBackend::<Job>::new_named(cfg.clone(), q, "worker-a").unwrap();
    assert_eq!(backend.consumer_name(), "worker-a");
    let hb = backend.hand_back_handle();
    let started = Arc::new(AtomicUsize::new(0));
    let a = WorkerBuilder::new("a")
        .backend(backend)
        .concurrency(4)
        .data(started.clone())
        .build(stuck);
    let run_a = tokio::spawn(a.run_until(std::future::pending::<Result<(), std::io::Error>>()));
    p.push_batch(q, &(0..4).map(Job::seq).collect::<Vec<_>>())
        .await
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(5), || started.load(Ordering::Acquire)
            == 4)
        .await
    );
    let mut held: Vec<HeldJob> = hb.held();
    assert_eq!(held.len(), 4);
    assert_eq!(p.stats(q).await.unwrap().running, 4);
    for j in &mut held {
        let mut job: Job = serde_json::from_slice(&j.payload).unwrap();
        job.seq += 100;
        j.payload = serde_json::to_vec(&job).unwrap();
    }
    assert_eq!(hb.hand_back(&held).await.unwrap(), 4);
    assert!(hb.held().is_empty(), "handed-back jobs are released");
    assert_eq!(hb.hand_back(&held).await.unwrap(), 0, "only pending ones");
    let st = p.stats(q).await.unwrap();
    assert_eq!((st.queued, st.running), (4, 0));

    let seen = Arc::new(std::sync::Mutex::new(Vec::<u32>::new()));
    let b = WorkerBuilder::new("b")
        .backend(RedisBackend::<Job>::new(cfg.clone(), q).unwrap())
        .concurrency(4)
        .data(seen.clone())
        .build(record);
    let run_b = tokio::spawn(b.run_until(std::future::pending::<Result<(), std::io::Error>>()));
    assert!(wait_until(Duration::from_secs(5), || seen.lock().unwrap().len() == 4).await);
    let mut s = seen.lock().unwrap().clone();
    s.sort();
    assert_eq!(s, vec![100, 101, 102, 103]);
    run_a.abort();
    run_b.abort();
    cleanup(&p).await;
}
