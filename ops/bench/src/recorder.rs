//! Buffered start recorder, like the peers' `lib/recorder.py`: a job's first action takes
//! the wall clock and appends to an in-memory buffer; a background task RPUSHes the
//! buffered lines `seq enq_ns due_ns start_ns pid` to `bench:rec:<run>` every flush period.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::MultiplexedConnection;

use crate::job::{BenchJob, now_ns};

/// Key prefix of the record lists.
pub const KEY_PREFIX: &str = "bench:rec:";

/// Recorder failures (connection or flush).
#[derive(Debug, thiserror::Error)]
pub enum RecorderError {
    /// Redis refused or failed.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
}

#[derive(Debug)]
struct Entry {
    run: String,
    seq: u64,
    enq_ns: u64,
    due_ns: u64,
    start_ns: u64,
}

/// Cloneable handle of the process's recorder.
#[derive(Clone)]
pub struct Recorder {
    buf: Arc<Mutex<Vec<Entry>>>,
    conn: MultiplexedConnection,
    pid: u32,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("pid", &self.pid)
            .finish_non_exhaustive()
    }
}

impl Recorder {
    /// Connects and spawns the flush task (every `every`), which lives as long as the runtime.
    pub async fn start(url: &str, every: Duration) -> Result<Self, RecorderError> {
        let client = redis::Client::open(url)?;
        let conn = client.get_multiplexed_async_connection().await?;
        let rec = Self {
            buf: Arc::new(Mutex::new(Vec::with_capacity(4096))),
            conn,
            pid: std::process::id(),
        };
        let bg = rec.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = bg.flush().await {
                    eprintln!("bench-recorder: flush failed: {e}");
                }
            }
        });
        Ok(rec)
    }

    /// Records the start of `job` now (one clock read and a buffer push).
    pub fn record(&self, job: BenchJob) {
        let start_ns = now_ns();
        let e = Entry {
            run: job.run,
            seq: job.seq,
            enq_ns: job.enq_ns,
            due_ns: job.due_ns,
            start_ns,
        };
        self.buf.lock().unwrap_or_else(|p| p.into_inner()).push(e);
    }

    /// Writes everything buffered so far (one pipeline, one RPUSH per run).
    pub async fn flush(&self) -> Result<usize, RecorderError> {
        let taken = {
            let mut b = self.buf.lock().unwrap_or_else(|p| p.into_inner());
            std::mem::take(&mut *b)
        };
        if taken.is_empty() {
            return Ok(0);
        }
        let n = taken.len();
        let by_run = lines_by_run(taken, self.pid);
        let mut pipe = redis::pipe();
        for (run, lines) in by_run {
            pipe.cmd("RPUSH")
                .arg(format!("{KEY_PREFIX}{run}"))
                .arg(lines)
                .ignore();
        }
        let mut conn = self.conn.clone();
        let () = pipe.query_async(&mut conn).await?;
        Ok(n)
    }
}

fn lines_by_run(entries: Vec<Entry>, pid: u32) -> HashMap<String, Vec<String>> {
    let mut by_run: HashMap<String, Vec<String>> = HashMap::new();
    for e in entries {
        let line = format!("{} {} {} {} {pid}", e.seq, e.enq_ns, e.due_ns, e.start_ns);
        by_run.entry(e.run).or_default().push(line);
    }
    by_run
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(run: &str, seq: u64) -> BenchJob {
        BenchJob {
            run: run.into(),
            seq,
            enq_ns: 100 + seq,
            due_ns: 200 + seq,
        }
    }

    #[test]
    fn lines_have_the_harness_format() {
        let e = vec![
            Entry {
                run: "a".into(),
                seq: 1,
                enq_ns: 2,
                due_ns: 3,
                start_ns: 4,
            },
            Entry {
                run: "b".into(),
                seq: 5,
                enq_ns: 6,
                due_ns: 7,
                start_ns: 8,
            },
            Entry {
                run: "a".into(),
                seq: 9,
                enq_ns: 10,
                due_ns: 11,
                start_ns: 12,
            },
        ];
        let m = lines_by_run(e, 42);
        assert_eq!(m["a"], vec!["1 2 3 4 42", "9 10 11 12 42"]);
        assert_eq!(m["b"], vec!["5 6 7 8 42"]);
    }

    #[tokio::test]
    async fn flushes_to_real_redis() {
        let url = "redis://127.0.0.1:6379";
        let run = format!("unit-{:016x}", std::process::id() as u64 ^ now_ns());
        let rec = Recorder::start(url, Duration::from_secs(3600))
            .await
            .unwrap();
        for i in 0..3 {
            rec.record(job(&run, i));
        }
        assert_eq!(rec.flush().await.unwrap(), 3);
        assert_eq!(rec.flush().await.unwrap(), 0);
        let mut conn = redis::Client::open(url)
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let key = format!("{KEY_PREFIX}{run}");
        let got: Vec<String> = redis::cmd("LRANGE")
            .arg(&key)
            .arg(0)
            .arg(-1)
            .query_async(&mut conn)
            .await
            .unwrap();
        let _: i64 = redis::cmd("DEL")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(got.len(), 3);
        let f: Vec<u64> = got[2].split(' ').map(|x| x.parse().unwrap()).collect();
        assert_eq!(&f[..3], &[2, 102, 202]);
        assert!(f[3] >= 202);
        assert_eq!(f[4], u64::from(std::process::id()));
    }
}
