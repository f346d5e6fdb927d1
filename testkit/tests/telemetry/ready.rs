//! `/readyz` of the API, a worker and the scheduler: ready while Postgres and Redis answer;
//! 503 naming Redis, within about a second, while Redis hangs (SIGSTOP); ready again after.

use crate::Observed;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A redis-server of this test's own, so it can be paused.
struct PausableRedis {
    child: Child,
    port: u16,
}

impl PausableRedis {
    async fn start() -> Self {
        let port = testkit::free_port();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server");
        let url = format!("redis://127.0.0.1:{port}");
        let up = testkit::wait_until(Duration::from_secs(5), || {
            let url = url.clone();
            async move {
                let Ok(c) = redis::Client::open(url.as_str()) else {
                    return false;
                };
                let Ok(mut conn) = c.get_multiplexed_async_connection().await else {
                    return false;
                };
                redis::cmd("PING")
                    .query_async::<String>(&mut conn)
                    .await
                    .is_ok()
            }
        })
        .await;
        assert!(up, "redis-server did not start");
        Self { child, port }
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill {sig}");
    }
}

impl Drop for PausableRedis {
    fn drop(&mut self) {
        self.signal("-CONT");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn readyz(o: &Observed, base: &str) -> (u16, String, Duration) {
    let started = Instant::now();
    let r = o
        .sys
        .http
        .get(format!("{base}/readyz"))
        .timeout(Duration::from_secs(10))
        .send()
        .await;
    match r {
        Ok(r) => {
            let status = r.status().as_u16();
            (
                status,
                r.text().await.unwrap_or_default(),
                started.elapsed(),
            )
        }
        Err(e) => (0, e.to_string(), started.elapsed()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_process_is_ready_only_while_postgres_and_redis_answer() {
    let redis = PausableRedis::start().await;
    let url = format!("redis://127.0.0.1:{}", redis.port);
    let o = Observed::start(1, vec![("AMP_REDIS_URL", url)]).await;
    let bases = [o.sys.api_url.clone(), o.worker.clone(), o.scheduler.clone()];
    for base in &bases {
        let ready = testkit::wait_until(Duration::from_secs(15), || async {
            readyz(&o, base).await.0 == 200
        })
        .await;
        assert!(ready, "{base} never ready: {:?}", readyz(&o, base).await);
    }
    let healthz = o
        .sys
        .http
        .get(format!("{}/healthz", o.scheduler))
        .send()
        .await
        .unwrap();
    assert_eq!(healthz.status().as_u16(), 200);

    redis.signal("-STOP");
    for base in &bases {
        let (status, body, took) = readyz(&o, base).await;
        assert_eq!(status, 503, "{base} with Redis hanging: {body}");
        assert!(
            body.contains("redis") && !body.contains("postgres"),
            "{base}: {body}"
        );
        assert!(
            took < Duration::from_millis(2500),
            "{base} answered after {took:?}"
        );
    }

    redis.signal("-CONT");
    for base in &bases {
        let ready = testkit::wait_until(Duration::from_secs(15), || async {
            readyz(&o, base).await.0 == 200
        })
        .await;
        assert!(
            ready,
            "{base} not ready again: {:?}",
            readyz(&o, base).await
        );
    }
    o.cleanup().await;
}
