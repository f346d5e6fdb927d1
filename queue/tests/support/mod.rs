//! Shared helpers of the queue integration tests (random prefixes, private redis-server).

#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use queue::{Producer, QueueConfig};
use serde::{Deserialize, Serialize};

pub const REDIS_URL: &str = "redis://127.0.0.1:6379";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    pub seq: u32,
    #[serde(default)]
    pub due_ms: u64,
    #[serde(default)]
    pub mode: u8,
}

impl Job {
    pub fn seq(seq: u32) -> Self {
        Self {
            seq,
            due_ms: 0,
            mode: 0,
        }
    }
}

/// A config with a random prefix on the shared Redis and test-friendly timings.
pub fn config(url: &str) -> QueueConfig {
    let prefix = format!("qtest_{:016x}", rand::random::<u64>());
    QueueConfig {
        block: Duration::from_millis(500),
        ..QueueConfig::new(url, prefix)
    }
}

/// Removes every key of the producer's prefix.
pub async fn cleanup(p: &Producer) {
    p.remove_prefix_keys().await.expect("cleanup");
}

/// Polls `f` every 20 ms until it is true or `within` passes; returns whether it became true.
pub async fn wait_until(within: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < within {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    f()
}

/// A private redis-server on a free port, killed on drop.
pub struct PrivateRedis {
    pub port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    pub fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let mut s = Self { port, child: None };
        s.restart();
        s
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
                "--bind",
                "127.0.0.1",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        self.child = Some(child);
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("private redis-server did not start");
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
    }
}
