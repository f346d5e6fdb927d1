//! Test-only helpers: a fresh database per test, a unique Redis key prefix, private
//! `redis-server` instances, amc-sim in process, and the real binaries as child processes.

pub mod db;
pub mod pg_cluster;
pub mod procs;
pub mod receiver;
pub mod redis_server;
pub mod slow_proxy;
pub mod system;

pub use db::TestDb;
pub use pg_cluster::PgCluster;
pub use procs::{Proc, bin_path, free_port};
pub use receiver::{Behaviour, Received, Receiver};
pub use redis_server::RedisServer;
pub use slow_proxy::SlowProxy;
pub use system::{Client, System, SystemOptions};

/// A short random suffix for names of databases and prefixes.
pub fn unique(name: &str) -> String {
    format!(
        "{name}_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// Polls `f` every 50 ms until it is true or `timeout` passes.
pub async fn wait_until<F, Fut>(timeout: std::time::Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if f().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
