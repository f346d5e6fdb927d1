//! Redis Streams job transport under apalis-core 1.0 workers (DESIGN §2a).
//!
//! - [`Job`] ties a payload type to its queue and settings; [`Producer::enqueue`] and
//!   [`RedisBackend::for_job`] take the queue from it.
//! - [`Producer`] pushes jobs (`push`, `push_batch`, `push_delayed`, `push_delayed_batch`, `push_after`), reads
//!   [`QueueStats`] and cleans a key prefix.
//! - [`RedisBackend`] is an apalis-core `Backend`: blocking XREADGROUP pickup, FIFO per
//!   queue, XACK + XDEL on success, delayed retries with exponential back-off, a dead list,
//!   reclaiming of crashed consumers' jobs, reconnection, graceful hand-back on stop.
//! - [`HandBack`] re-queues a stopping consumer's running jobs at once (hard stop).
//! - [`RedisWorkerExt::concurrency`] sets the worker's concurrency on the builder.
//!
//! Redis layout (all under `{prefix}`): `{prefix}:q:{queue}` (stream, group `workers`,
//! fields `id`, `p`, `a`, `t`), `{prefix}:q:{queue}:delayed` (sorted set, score = due
//! unix ms), `{prefix}:q:{queue}:dead` (stream capped at 10,000).

mod backend;
mod config;
mod consumer;
mod envelope;
mod error;
mod handback;
mod health;
mod job;
mod middleware;
mod producer;
mod scripts;
mod stats;
mod tasks;
mod timer;

pub use backend::{RedisBackend, RedisWorkerExt};
pub use config::{DEAD_CAP, GROUP, QueueConfig, QueueKeys, consumer_name};
pub use envelope::{Envelope, now_ms, retry_delay};
pub use error::{QueueError, Result};
pub use handback::{HandBack, HeldJob};
pub use health::ConsumerHealth;
pub use job::Job;
pub use middleware::{AckLayer, AckService, HandlerPanic, JobMeta};
pub use producer::{DeadJob, JobId, Producer, QueueStats, TraceSource, remove_prefix_keys};
pub use stats::{Inspector, QueueSnapshot, stream_id_ms};
