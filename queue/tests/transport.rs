//! End-to-end tests of the Redis Streams transport with real apalis workers.

mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use apalis_core::error::{AbortError, BoxDynError};
use apalis_core::layers::{Layer, Service};
use apalis_core::task::Task;
use apalis_core::task::data::Data;
use apalis_core::worker::builder::WorkerBuilder;
use queue::{GROUP, JobMeta, Producer, QueueConfig, RedisBackend, RedisWorkerExt, now_ms};
use support::{Job, PrivateRedis, REDIS_URL, cleanup, config, wait_until};
use tokio::sync::Notify;

#[derive(Clone, Default)]
struct Seen {
    log: Arc<Mutex<Vec<(u32, u64)>>>,
    done: Arc<Notify>,
    target: usize,
}

impl Seen {
    fn new(target: usize) -> Self {
        Self {
            target,
            ..Self::default()
        }
    }
    fn record(&self, seq: u32, extra: u64) {
        let mut l = self.log.lock().unwrap();
        l.push((seq, extra));
        if l.len() >= self.target {
            self.done.notify_one();
        }
    }
    fn len(&self) -> usize {
        self.log.lock().unwrap().len()
    }
    fn seqs(&self) -> Vec<u32> {
        self.log.lock().unwrap().iter().map(|x| x.0).collect()
    }
}

async fn record(job: Job, seen: Data<Seen>) -> Result<(), BoxDynError> {
    seen.record(job.seq, 0);
    Ok(())
}

async fn record_lateness(job: Job, seen: Data<Seen>) -> Result<(), BoxDynError> {
    let now = now_ms() as i64;
    seen.record(job.seq, (now - job.due_ms as i64 + 1_000_000) as u64);
    Ok(())
}

async fn signal(n: Arc<Notify>) -> Result<(), std::io::Error> {
    n.notified().await;
    Ok(())
}

async fn xlen(url: &str, key: &str) -> u64 {
    let c = redis::Client::open(url).unwrap();
    let mut conn = c.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("XLEN")
        .arg(key)
        .query_async(&mut conn)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drains_2000_jobs_exactly_once_and_leaves_nothing() {
    let cfg = config(REDIS_URL);
    let p = Producer::connect(cfg.clone()).await.unwrap();
    let q = "t.drain";
    let jobs: Vec<Job> = (0..2000).map(Job::seq).collect();
    p.push_batch(q, &jobs).await.unwrap();
    assert_eq!(p.stats(q).await.unwrap().queued, 2000);

    let seen = Seen::new(2000);
    let worker = WorkerBuilder::new("drain")
        .backend(RedisBackend::<Job>::new(cfg.clone(), q).unwrap())
        .concurrency(8)
        .data(seen.clone())
        .build(record);
    tokio::time::timeout(
        Duration::from_secs(30),
        worker.run_until(signal(seen.done.clone())),
    )
    .await
    .expect("drain timed out")
    .unwrap();

    let mut counts = vec![0u32; 2000];
    for s in seen.seqs() {
        counts[s as usize] += 1;
    }
    assert!(counts.iter().all(|c| *c == 1), "every job exactly once");
    let keys = cfg.keys(q);
    assert_eq!(
        xlen(REDIS_URL, &keys.stream).await,
        0,
        "finished jobs are deleted"
    );
    let st = p.stats(q).await.unwrap();
    assert_eq!((st.queued, st.running, st.scheduled, st.dead), (0, 0, 0, 0));
    cleanup(&p).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_one_is_fifo() {
    let cfg = config(REDIS_URL);
    let p = Producer::connect(cfg.clone()).await.unwrap();
    let q = "t.fifo";
    let jobs: Vec<Job> = (0..500).map(Job::seq).collect();
    p.push_batch(q, &jobs[..250]).await.unwrap();
    for j in &jobs[250..300] {
        p.push(q, j).await.unwrap();
    }
    p.push_batch(q, &jobs[300..]).await.unwrap();

    let seen = Seen::new(500);
    let worker = WorkerBuilder::new("fifo")
        .backend(RedisBackend::<Job>::new(cfg.clone(), q).unwrap())
        .concurrency(1)
        .data(seen.clone())
        .build(record);
    tokio::time::timeout(
        Duration::from_secs(20),
        worker.run_until(signal(seen.done.clone())),
    )
    .await
    .expect("fifo timed out")
    .unwrap();
    assert_eq!(seen.seqs(), (0..500).collect::<Vec<_>>());
    cleanup(&p).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delayed_jobs_fire_on_time() {
    let cfg = config(REDIS_URL);
    let p = Producer::connect(cfg.clone()).await.unwrap();
    let q = "t.delayed";
    let seen = Seen::new(50);
    let worker = WorkerBuilder::new("delayed")
        .backend(RedisBackend::<Job>::new(cfg.clone(), q).unwrap())
        .concurrency(8)
        .data(seen.clone())
        .build(record_lateness);
    let run = tokio::spawn(worker.run_until(signal(seen.done.clone())));
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Half one at a time, half in one pipelined batch.
    for i in 0..25u32 {
        let due = SystemTime::now() + Duration::from_millis(300);
        let job = Job {
            seq: i,
            due_ms: queue::now_ms() + 300,
            mode: 0,
        };
        p.push_delayed(q, &job, due).await.unwrap();
    }
    let batch: Vec<(Job, SystemTime)> = (25..50u32)
        .map(|i| {
            let job = Job {
                seq: i,
                due_ms: queue::now_ms() + 300,
                mode: 0,
            };
            (job, SystemTime::now() + Duration::from_millis(300))
        })
        .collect();
    assert_eq!(p.push_delayed_batch(q, &batch).await.unwrap().len(), 25);
    assert!(p.stats(q).await.unwrap().scheduled > 0);
    tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("delayed timed out")
        .unwrap()
        .unwrap();
    let late: Vec<i64> = seen
        .log
        .lock()
        .unwrap()
        .iter()
        .map(|(_, l)| *l as i64 - 1_000_000)
        .collect();
    let min = *late.iter().min().unwrap();
    let max = *late.iter().max().unwrap();
    let mut sorted = late.clone();
    sorted.sort();
    eprintln!(
        "delayed lateness ms: min {min} p50 {} max {max}",
        sorted[25]
    );
    assert!(min >= 0, "a job fired {min} ms early");
    assert!(max < 150, "a job fired {max} ms late");
    assert_eq!(p.stats(q).await.unwrap().scheduled, 0);
    cleanup(&p).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coarse_timer_fires_due_jobs_together_and_never_early() {
    let granularity = Duration::from_millis(200);
    let cfg = QueueConfig {
        timer_granularity: granularity,
        ..config(REDIS_URL)
    };
    let p = Producer::connect(cfg.clone()).await.unwrap();
    let q = "t.coarse";
    let seen = Seen::new(30);
    let worker = WorkerBuilder::new("coarse")
        .backend(RedisBackend::<Job>::new(cfg.clone(), q).unwrap())
        .concurrency(32)
        .data(seen.clone())
        .build(record_lateness);
    let run = tokio::spawn(worker.run_until(signal(seen.done.clone())));
    tokio::time::sleep(Duration::from_millis(200)).await;

    // 30 jobs due 5 ms apart, over 150 ms.
    let base = queue::now_ms() + 300;
    let batch: Vec<(Job, SystemTime)> = (0..30u32)
        .map(|i| {
            let due_ms = base + 5 * i as u64;
            let job = Job {
                seq: i,
                due_ms,
                mode: 0,
            };
            (job, std::time::UNIX_EPOCH + Duration::from_millis(due_ms))
        })
        .collect();
    p.push_delayed_batch(q, &batch).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("coarse timer timed out")
        .unwrap()
        .unwrap();
    let mut starts: Vec<i64> = Vec::new();
    for (seq, l) in seen.log.lock().unwrap().iter() {
        let late = *l as i64 - 1_000_000;
        assert!(late >= 0, "job {seq} fired {late} ms early");
        assert!(
            late < granularity.as_millis() as i64 + 150,
            "job {seq} fired {late} ms late"
        );
        starts.push(base as i64 + 5 * *seq as i64 + late);
    }
    // Jobs due over 150 ms start in at most two bursts (one look per 200 ms).
    starts.sort();
    let bursts = 1 + starts.windows(2).filter(|w| w[1] - w[0] > 40).count();
    assert!(bursts <= 2, "{bursts} bursts: {starts:?}");
    cleanup(&p).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashed_consumer_jobs_are_reclaimed() {
    let cfg = QueueConfig {
        claim_idle: Duration::from_secs(1),
        claim_interval: Duration::from_millis(200),
        ..config(REDIS_URL)
    };
    let p = Producer::connect(cfg.clone()).await.unwrap();
    let q = "t.crash";
    let keys = cfg.keys(q);
    let jobs: Vec<Job> = (0..20).map(Job::seq).collect();
    p.push_batch(q, &jobs).await.unwrap();

    // Consumer A reads everything and "crashes" (never acks, never refreshes).
    let c = redis::Client::open(REDIS_URL).unwrap();
    let mut conn = c.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&keys.stream)
        .arg(GROUP)
        .arg("0")
        .arg("MKSTREAM")
        .query_async(&mut conn)
        .await
        .unwrap();
    let taken: redis::streams::StreamReadReply = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg(GROUP)
        .arg("crashed-consumer")
        .arg("COUNT")
        .arg(100)
        .arg("STREAMS")
        .arg(&keys.stream)
        .arg(">")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(taken.keys[0].ids.len(), 20);
    assert_eq!(p.stats(q).await.unwrap().running, 20);

    let started = std::time::Instant::now();
    let seen = Seen::new(20);
    let worker = WorkerBuilder::new("rescuer")
        .backend(RedisBackend::<Job>::new(cfg.clone(), q).unwrap())
        .concurrency(4)
        .data(seen.clone())
        .build(record);
    tokio::time::timeout(
        Duration::from_secs(10),
        worker.run_until(signal(seen.done.clone())),
    )
    .await
    .expect("reclaim timed out")
    .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "took {:?}",
        started.elapsed()
    );
    let mut s = seen.seqs();
    s.sort();
    assert_eq!(s, (0..20).collect::<Vec<_>>());
    let st = p.stats(q).await.unwrap();
    assert_eq!((st.queued, st.running), (0, 0));
    cleanup(&p).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_redis_restart() {
    let mut server = PrivateRedis::start();
    let cfg = QueueConfig {
        block: Duration::from_millis(300),
        ..config(&server.url())
    };
    let p = Producer::connect(cfg.clone()).await.unwrap();
    let q = "t.restart";
    let backend = RedisBackend::<Job>::new(cfg.clone(), q).unwrap();
    let health = backend.health();
    let seen = Seen::new(usize::MAX);
    let stop = Arc::new(Notify::new());
    let worker = WorkerBuilder::new("restart")
        .backend(backend)
        .concurrency(2)
        .data(seen.clone())
        .build(record);
    let run = tokio::spawn(worker.run_until(signal(stop.clone())));

    for i in 0..5 {
        p.push(q, &Job::seq(i)).await.unwrap();
    }
    assert!(wait_until(Duration::from_secs(3), || seen.len() == 5).await);
    assert!(health.is_healthy());

    server.kill();
    assert!(
        wait_until(Duration::from_secs(3), || !health.is_healthy()).await,
        "health must turn false while redis is down"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.restart();

    for i in 5..10 {
        let mut pushed = false;
        for _ in 0..100 {
            if p.push(q, &Job::seq(i)).await.is_ok() {
                pushed = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(pushed, "producer did not reconnect");
    }
    assert!(
        wait_until(Duration::from_secs(8), || seen.len() == 10).await,
        "jobs after restart not consumed: {:?}",
        seen.seqs()
    );
    assert!(wait_until(Duration::from_secs(2), || health.is_healthy()).await);
    stop.notify_one();
    tokio::time::timeout(Duration::from_secs(5), run)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

async fn failing(job: Job, meta: Data<JobMeta>, seen: Data<Seen>) -> Result<(), BoxDynError> {
    seen.record(job.seq, u64::from(meta.attempt));
    match job.mode {
        1 => panic!("handler panic for job {}", job.seq),
        2 => Err(AbortError::new("permanent").into()),
        _ => Err("boom".into()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_retry_with_backoff_then_go_dead() {
    let cfg = QueueConfig {
        max_attempts: 3,
        ..config(REDIS_URL)
    };
    let p = Producer::connect(cfg.clone()).await.unwrap();
    let q = "t.retry";
    p.push(
        q,
        &Job {
            seq: 1,
            due_ms: 0,
            mode: 0,
        },
    )
    .await
    .unwrap();
    p.push(
        q,
        &Job {
            seq: 2,
            due_ms: 0,
            mode: 1,
        },
    )
    .await
    .unwrap();
    p.push(
        q,
        &Job {
            seq: 3,
            due_ms: 0,
            mode: 2,
        },
    )
    .await
    .unwrap();
    p.push_raw(q, b"not json".to_vec()).await.unwrap();

    // 3 runs each for the error and the panic, 1 for the abort.
    let seen = Seen::new(7);
    let worker = WorkerBuilder::new("retry")
        .backend(RedisBackend::<Job>::new(cfg.clone(), q).unwrap())
        .concurrency(2)
        .data(seen.clone())
        .build(failing);
    let stop = Arc::new(Notify::new());
    let run = tokio::spawn(worker.run_until(signal(stop.clone())));
    let ok = wait_until(Duration::from_secs(10), || seen.len() >= 7).await;
    assert!(ok, "runs: {:?}", seen.log.lock().unwrap());
    // Give the last acks a moment, then check nothing else runs.
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.notify_one();
    tokio::time::timeout(Duration::from_secs(5), run)
        .await
        .unwrap()
        .unwrap()
        .unwrap();

    let mut by_seq: HashMap<u32, Vec<u64>> = HashMap::new();
    for (s, a) in seen.log.lock().unwrap().iter() {
        by_seq.entry(*s).or_default().push(*a);
    }
    assert_eq!(by_seq[&1], vec![0, 1, 2], "attempt increments per retry");
    assert_eq!(by_seq[&2], vec![0, 1, 2], "a panic counts as an error");
    assert_eq!(by_seq[&3], vec![0], "AbortError is never retried");

    let st = p.stats(q).await.unwrap();
    assert_eq!((st.queued, st.running, st.scheduled, st.dead), (0, 0, 0, 4));
    let dead = p.dead_jobs(q, 10).await.unwrap();
    assert!(dead.iter().any(|d| d.error.contains("decode")), "{dead:?}");
    assert!(
        dead.iter()
            .any(|d| d.error.contains("boom") && d.attempt == 2),
        "{dead:?}"
    );
    assert!(dead.iter().any(|d| d.error.contains("panic")), "{dead:?}");
    assert!(
        dead.iter()
            .any(|d| d.error.contains("permanent") && d.attempt == 0),
        "{dead:?}"
    );
    cleanup(&p).await;
}

/// A user middleware that never lets jobs start (so fetched jobs stay unstarted).
#[derive(Clone)]
struct Gate(Arc<AtomicBool>);

impl<S> Layer<S> for Gate {
    type Service = GateService<S>;
    fn layer(&self, inner: S) -> GateService<S> {
        GateService(inner, self.0.clone())
    }
}

#[derive(Clone)]
struct GateService<S>(S, Arc<AtomicBool>);

impl<S: Service<Task<Job>>> Service<Task<Job>> for GateService<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        if self.1.load(Ordering::SeqCst) {
            self.0.poll_ready(cx)
        } else {
            Poll::Pending
        }
    }
    fn call(&mut self, t: Task<Job>) -> S::Future {
        self.0.call(t)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_stop_hands_back_unstarted_jobs() {
    let cfg = QueueConfig {
        claim_idle: Duration::from_secs(60),
        ..config(REDIS_URL)
    };
    let p = Producer::connect(cfg.clone()).await.unwrap();
    let q = "t.handback";
    let seen_a = Seen::new(usize::MAX);
    let stop_a = Arc::new(Notify::new());
    let worker_a = WorkerBuilder::new("a")
        .backend(RedisBackend::<Job>::new(cfg.clone(), q).unwrap())
        .concurrency(4)
        .layer(Gate(Arc::new(AtomicBool::new(false))))
        .data(seen_a.clone())
        .build(record);
    let run_a = tokio::spawn(worker_a.run_until(signal(stop_a.clone())));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let jobs: Vec<Job> = (0..6).map(Job::seq).collect();
    p.push_batch(q, &jobs).await.unwrap();

    // A fetches exactly its 4 free slots and cannot start them.
    let mut fetched = false;
    for _ in 0..100 {
        let st = p.stats(q).await.unwrap();
        if st.running == 4 && st.queued == 2 {
            fetched = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(fetched, "stats: {:?}", p.stats(q).await.unwrap());

    let seen_b = Seen::new(6);
    let worker_b = WorkerBuilder::new("b")
        .backend(RedisBackend::<Job>::new(cfg.clone(), q).unwrap())
        .concurrency(4)
        .data(seen_b.clone())
        .build(record);
    let run_b = tokio::spawn(worker_b.run_until(signal(seen_b.done.clone())));
    assert!(wait_until(Duration::from_secs(3), || seen_b.len() == 2).await);

    let t = std::time::Instant::now();
    stop_a.notify_one();
    tokio::time::timeout(Duration::from_secs(5), run_a)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    tokio::time::timeout(Duration::from_secs(5), run_b)
        .await
        .expect("handed-back jobs not run by b")
        .unwrap()
        .unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "hand-back took {:?}",
        t.elapsed()
    );
    assert_eq!(seen_a.len(), 0);
    let mut s = seen_b.seqs();
    s.sort();
    assert_eq!(s, (0..6).collect::<Vec<_>>());
    let st = p.stats(q).await.unwrap();
    assert_eq!((st.queued, st.running), (0, 0));
    cleanup(&p).await;
}
