//! A test driver for the worker: runs the jobs that are due, in this process, one at a
//! time and in order, until none is left, so a test can assert on rows after each round
//! (as crates.io's `run_pending_background_jobs`). It takes jobs straight off the queues
//! of its prefix, so no worker process may consume that prefix meanwhile. It runs every
//! kind [`crate::jobs::register`] adds, the list the worker itself consumes.

use crate::ctx::Ctx;
use crate::jobs::{Handle, JobError, Kinds};
use futures::future::BoxFuture;
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

/// What a round of [`Driver::run_pending`] ran, by queue.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Ran(BTreeMap<&'static str, usize>);

impl Ran {
    /// Jobs of kind `J` run.
    pub fn of<J: queue::Job>(&self) -> usize {
        self.0.get(J::QUEUE).copied().unwrap_or(0)
    }

    pub fn total(&self) -> usize {
        self.0.values().sum()
    }
}

/// Runs the due jobs of one kind; how many ran.
type RunKind = for<'a> fn(&'a Driver) -> BoxFuture<'a, Result<usize, JobError>>;

/// The kinds, as [`crate::jobs::register`] lists them.
#[derive(Default)]
struct Runners(Vec<(&'static str, RunKind)>);

impl Kinds for Runners {
    fn add<J: Handle>(&mut self) -> anyhow::Result<()> {
        self.0.push((J::QUEUE, run_boxed::<J>));
        Ok(())
    }
}

fn run_boxed<J: Handle>(d: &Driver) -> BoxFuture<'_, Result<usize, JobError>> {
    Box::pin(d.run_due::<J>())
}

/// Runs a worker's jobs in-process.
pub struct Driver {
    pub ctx: Ctx,
    /// Delayed jobs due within this much of now run too (a status check scheduled a
    /// second ahead need not be waited for).
    pub lookahead: Duration,
    kinds: Runners,
}

impl Driver {
    /// A driver over the worker context built from `config` (its own connections).
    pub async fn new(config: std::sync::Arc<common::config::Config>) -> anyhow::Result<Self> {
        let mut kinds = Runners::default();
        crate::jobs::register(&mut kinds)?;
        Ok(Self {
            ctx: crate::build_ctx(config).await?,
            lookahead: Duration::ZERO,
            kinds,
        })
    }

    /// The queues it runs, in the order of each pass.
    pub fn queues(&self) -> Vec<&'static str> {
        self.kinds.0.iter().map(|(q, _)| *q).collect()
    }

    /// Runs every job that is due (and, with a lookahead, soon due), and what those jobs
    /// enqueue that is due too, until a pass finds nothing to run, or `max_passes`.
    pub async fn run_pending(&self, max_passes: usize) -> Result<Ran, JobError> {
        let mut ran = Ran::default();
        for _ in 0..max_passes {
            let before = ran.total();
            for (queue, run) in &self.kinds.0 {
                *ran.0.entry(queue).or_default() += run(self).await?;
            }
            if ran.total() == before {
                break;
            }
        }
        Ok(ran)
    }

    /// Runs the jobs of kind `J` that are due (within the lookahead), once: not those they
    /// enqueue. Returns how many ran.
    pub async fn run_due<J: Handle>(&self) -> Result<usize, JobError> {
        let until = SystemTime::now() + self.lookahead;
        let jobs = self.ctx.producer.take_runnable::<J>(1_000, until).await?;
        let n = jobs.len();
        for job in jobs {
            job.handle(&self.ctx).await?;
        }
        Ok(n)
    }
}
