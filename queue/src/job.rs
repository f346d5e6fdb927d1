//! Typed jobs: a payload type tied to its queue and its settings, so a queue's name is
//! written once, in its [`Job`] impl, and everything that enqueues or consumes it goes
//! through the type ([`crate::Producer::enqueue`], [`crate::RedisBackend::for_job`]).

use serde::Serialize;
use serde::de::DeserializeOwned;
use std::time::Duration;

/// A kind of job: its payload (this type) and its queue.
pub trait Job: Serialize + DeserializeOwned + Send + Sync + Unpin + 'static {
    /// The queue's name: part of the Redis contract, never changed once deployed.
    const QUEUE: &'static str;

    /// Handler failures after which a job goes to the dead list (counting the first run).
    const MAX_ATTEMPTS: u32 = 25;

    /// Jobs of this kind one worker process runs at once, given the configured
    /// `AMP_WORKER_CONCURRENCY`.
    fn concurrency(configured: usize) -> usize {
        configured
    }

    /// How late a delayed job of this kind may fire so that due jobs are promoted together
    /// (see [`crate::QueueConfig::timer_granularity`]), given `AMP_POLL_MIN`.
    fn timer_granularity(_poll_min: Duration) -> Duration {
        Duration::ZERO
    }
}
