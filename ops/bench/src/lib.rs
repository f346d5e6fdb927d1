//! Adapters that plug our Redis Streams queue into the peer benchmark harness
//! (`/work/shared/peers`, "Plugging in a system under test"): the job payload, the
//! command-line parsing of `bench-produce` / `bench-worker` and the buffered start recorder.

pub mod args;
pub mod job;
pub mod recorder;

pub use args::{ArgError, Mode, ProduceArgs, parse_concurrency, parse_produce};
pub use job::{BenchJob, PREFIX, QUEUE, flush_ms, now_ns, queue_config, redis_url};
pub use recorder::{Recorder, RecorderError};
