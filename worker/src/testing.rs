//! A test driver for the worker: runs the jobs that are due, in this process, one at a
//! time and in order, until none is left, so a test can assert on rows after each round
//! (as crates.io's `run_pending_background_jobs`). It takes jobs straight off the queues
//! of its prefix, so no worker process may consume that prefix meanwhile.

use crate::ctx::Ctx;
use crate::jobs::{Handle, JobError};
use common::jobs::{AdmitJob, CancelJob, FetchJob, PollJob, SubmitJob};
use std::time::{Duration, SystemTime};

/// What a round of [`Driver::run_pending`] ran, by kind.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Ran {
    pub submit: usize,
    pub poll: usize,
    pub fetch: usize,
    pub cancel: usize,
    pub admit: usize,
}

impl Ran {
    pub fn total(&self) -> usize {
        self.submit + self.poll + self.fetch + self.cancel + self.admit
    }
}

/// Runs a worker's jobs in-process.
pub struct Driver {
    pub ctx: Ctx,
    /// Delayed jobs due within this much of now run too (a status check scheduled a
    /// second ahead need not be waited for).
    pub lookahead: Duration,
}

impl Driver {
    /// A driver over the worker context built from `config` (its own connections).
    pub async fn new(config: std::sync::Arc<common::config::Config>) -> anyhow::Result<Self> {
        Ok(Self {
            ctx: crate::build_ctx(config).await?,
            lookahead: Duration::ZERO,
        })
    }

    /// Runs every job that is due (and, with a lookahead, soon due), and what those jobs
    /// enqueue that is due too, until a pass finds nothing to run, or `max_passes`.
    pub async fn run_pending(&self, max_passes: usize) -> Result<Ran, JobError> {
        let mut ran = Ran::default();
        for _ in 0..max_passes {
            let before = ran.total();
            ran.admit += self.run_kind::<AdmitJob>().await?;
            ran.submit += self.run_kind::<SubmitJob>().await?;
            ran.poll += self.run_kind::<PollJob>().await?;
            ran.fetch += self.run_kind::<FetchJob>().await?;
            ran.cancel += self.run_kind::<CancelJob>().await?;
            if ran.total() == before {
                break;
            }
        }
        Ok(ran)
    }

    async fn run_kind<J: Handle>(&self) -> Result<usize, JobError> {
        let until = SystemTime::now() + self.lookahead;
        let jobs = self.ctx.producer.take_runnable::<J>(1_000, until).await?;
        let n = jobs.len();
        for job in jobs {
            job.handle(&self.ctx).await?;
        }
        Ok(n)
    }
}
