//! `bench-produce`: enqueues the harness's no-op jobs through our `queue::Producer`.
//!
//! `bench-produce --run R --n N --mode single|batch [--batch K] [--rate JOBS_PER_S]
//! [--delay-ms MS]` prints `{"n","mode","seconds","jobs_per_s","max_lag_ms"}`, timed from
//! the first enqueue call to the last one returning; `bench-produce --count` prints
//! `{"queued": n}` (waiting + delayed). Redis from `BENCH_REDIS_URL`, key prefix `bench`.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bench::{BenchJob, Mode, ProduceArgs, QUEUE, job::system_time, now_ns, parse_produce};
use queue::Producer;

fn job(a: &ProduceArgs, seq: u64, delay_ns: u64) -> BenchJob {
    let enq_ns = now_ns();
    BenchJob {
        run: a.run.clone(),
        seq,
        enq_ns,
        due_ns: enq_ns + delay_ns,
    }
}

async fn single(p: &Producer, a: &ProduceArgs, t0: Instant) -> anyhow::Result<f64> {
    let delay_ns = (a.delay_ms * 1e6).round() as u64;
    let mut max_lag = 0f64;
    for i in 0..a.n {
        if a.rate > 0.0 {
            let target = t0 + Duration::from_secs_f64(i as f64 / a.rate);
            let now = Instant::now();
            if target > now {
                tokio::time::sleep_until(target.into()).await;
            } else {
                max_lag = max_lag.max((now - target).as_secs_f64() * 1000.0);
            }
        }
        let j = job(a, i, delay_ns);
        if delay_ns > 0 {
            let due = system_time(j.due_ns);
            p.push_delayed(QUEUE, &j, due).await?;
        } else {
            p.push_raw(QUEUE, serde_json::to_vec(&j)?).await?;
        }
    }
    Ok(max_lag)
}

async fn batch(p: &Producer, a: &ProduceArgs) -> anyhow::Result<()> {
    if a.delay_ms > 0.0 || a.rate > 0.0 {
        bail!("--mode batch takes neither --rate nor --delay-ms");
    }
    let mut start = 0;
    while start < a.n {
        let end = a.n.min(start + a.batch as u64);
        let jobs: Vec<BenchJob> = (start..end).map(|i| job(a, i, 0)).collect();
        p.push_batch(QUEUE, &jobs).await?;
        start = end;
    }
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let a = parse_produce(argv.iter().map(String::as_str))?;
    let url = bench::redis_url();
    let p = Producer::connect(bench::queue_config(&url))
        .await
        .with_context(|| format!("connecting to {url}"))?;
    if a.count {
        let st = p.stats(QUEUE).await?;
        println!(
            "{}",
            serde_json::json!({"queued": st.queued + st.scheduled, "running": st.running, "dead": st.dead})
        );
        return Ok(());
    }
    let t0 = Instant::now();
    let max_lag = match a.mode {
        Mode::Single => single(&p, &a, t0).await?,
        Mode::Batch => {
            batch(&p, &a).await?;
            0.0
        }
    };
    let dt = t0.elapsed().as_secs_f64();
    let mode = match a.mode {
        Mode::Single => "single",
        Mode::Batch => "batch",
    };
    println!(
        "{}",
        serde_json::json!({
            "n": a.n, "mode": mode, "batch": a.batch, "seconds": dt,
            "jobs_per_s": a.n as f64 / dt, "max_lag_ms": max_lag,
        })
    );
    Ok(())
}
