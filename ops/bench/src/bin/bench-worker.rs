//! `bench-worker --concurrency C`: an apalis worker over our `RedisBackend` running the
//! harness's no-op jobs; each job's first action records its start through the buffered
//! [`bench::Recorder`]. Ends (graceful stop, last flush) on SIGTERM or SIGINT.
//! `BENCH_THREADS` = tokio worker threads (default: one per core; 1 = current-thread runtime).

use anyhow::Context;
use apalis_core::error::BoxDynError;
use apalis_core::task::data::Data;
use apalis_core::worker::builder::WorkerBuilder;
use bench::{BenchJob, QUEUE, Recorder, parse_concurrency};
use queue::{RedisBackend, RedisWorkerExt};
use tokio::signal::unix::{SignalKind, signal};

async fn noop(job: BenchJob, rec: Data<Recorder>) -> Result<(), BoxDynError> {
    rec.record(job);
    Ok(())
}

async fn stop_signal() -> Result<(), std::io::Error> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}

async fn run(concurrency: usize) -> anyhow::Result<()> {
    let url = bench::redis_url();
    let rec = Recorder::start(&url, bench::flush_ms())
        .await
        .with_context(|| format!("connecting the recorder to {url}"))?;
    let backend = RedisBackend::<BenchJob>::new(bench::queue_config(&url), QUEUE)?;
    let worker = WorkerBuilder::new("bench")
        .backend(backend)
        .concurrency(concurrency)
        .data(rec.clone())
        .build(noop);
    worker.run_until(stop_signal()).await?;
    rec.flush().await?;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let concurrency = parse_concurrency(argv.iter().map(String::as_str))?;
    let threads: usize = std::env::var("BENCH_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    let rt = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        if threads > 1 {
            b.worker_threads(threads);
        }
        b.enable_all().build()?
    };
    rt.block_on(run(concurrency))
}
