//! Running a job kind: [`Registrar::add`] gives a [`Handle`] type its consumer (our Redis
//! Streams backend, named after the worker), its apalis worker with the kind's
//! concurrency, and its hand-back at a hard stop. `crate::jobs::register` adds every kind.

use crate::ctx::Ctx;
use crate::jobs::{Handle, JobResult, Kinds};
use apalis_core::error::BoxDynError;
use apalis_core::task::data::Data;
use apalis_core::worker::builder::WorkerBuilder;
use common::telemetry::metrics::JobOutcome;
use common::telemetry::trace;
use futures::future::BoxFuture;
use queue::JobMeta;
use queue::{ConsumerHealth, HandBack, HeldJob, RedisBackend, RedisWorkerExt};
use tokio::sync::watch;
use tracing::Instrument;

/// One queue's worker run: its name and how it ended.
pub type RunResult = (&'static str, Result<(), String>);

/// Rewrites held payloads of one kind before they are handed back.
type Rewrite = fn(Ctx, Vec<u8>) -> BoxFuture<'static, Vec<u8>>;

/// A queue's hand-back handle with its kind's rewrite.
pub struct HandBackOf {
    pub handle: HandBack,
    rewrite: Rewrite,
}

impl HandBackOf {
    /// Hands back every job the consumer still holds; returns how many were re-queued.
    pub async fn hand_back(&self, ctx: &Ctx) -> usize {
        let mut jobs: Vec<HeldJob> = self.handle.held();
        if jobs.is_empty() {
            return 0;
        }
        for j in &mut jobs {
            j.payload = (self.rewrite)(ctx.clone(), std::mem::take(&mut j.payload)).await;
        }
        match self.handle.hand_back(&jobs).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(queue = self.handle.queue(), error = %e, "hand-back failed; jobs will be reclaimed after claim_idle");
                0
            }
        }
    }
}

/// What adding job kinds builds: their health, hand-backs and runs.
pub struct Registrar {
    pub(crate) ctx: Ctx,
    pub(crate) consumer: String,
    pub(crate) queues: Vec<String>,
    pub(crate) health: Vec<ConsumerHealth>,
    pub(crate) hand_backs: Vec<HandBackOf>,
    pub(crate) runs: Vec<BoxFuture<'static, RunResult>>,
    pub(crate) stop: watch::Receiver<bool>,
}

/// Runs one job in its span (a child of its run's root, linked to the step before it:
/// `telemetry::trace`) and logs an infrastructure failure with its causes (the queue
/// retries it).
async fn run<J: Handle>(job: J, ctx: Data<Ctx>, meta: Data<JobMeta>) -> Result<(), BoxDynError> {
    let waited_ms = queue::now_ms().saturating_sub(meta.runnable_ms);
    let waited = std::time::Duration::from_millis(waited_ms);
    let ctx: &Ctx = &ctx;
    let span = job_span(J::QUEUE);
    job.describe(&span);
    as_job(
        ctx,
        (J::QUEUE, span),
        meta.trace.as_deref(),
        waited,
        job.handle(ctx),
    )
    .await
    .map_err(BoxDynError::from)
}

/// A job's span, named after its queue, with the fields its kind records
/// ([`Handle::describe`]).
pub(crate) fn job_span(queue: &'static str) -> tracing::Span {
    tracing::info_span!(
        "job",
        otel.name = %format!("job {queue}"),
        queue,
        execution.id = tracing::field::Empty,
        delivery.id = tracing::field::Empty,
        instance.id = tracing::field::Empty,
    )
}

/// Runs `work` as a job of `queue` runs: counted in the queue's metrics (`waited` since it
/// could start), in `span` (its [`job_span`]) joined to the trace `carried` names, a
/// failure logged.
pub(crate) async fn as_job<F>(
    ctx: &Ctx,
    (queue, span): (&'static str, tracing::Span),
    carried: Option<&str>,
    waited: std::time::Duration,
    work: F,
) -> JobResult
where
    F: std::future::Future<Output = JobResult>,
{
    ctx.metrics.started(queue, waited);
    let root = trace::join(&span, carried);
    trace::scope(root, measured(ctx, queue, work).instrument(span)).await
}

async fn measured<F>(ctx: &Ctx, queue: &'static str, work: F) -> JobResult
where
    F: std::future::Future<Output = JobResult>,
{
    let started = std::time::Instant::now();
    let result = work.await;
    let outcome = match &result {
        Ok(()) => JobOutcome::Ok,
        Err(e) => {
            tracing::warn!(queue, error = %common::telemetry::chain(e), "job failed; the queue retries it");
            JobOutcome::Error
        }
    };
    ctx.metrics.record(queue, outcome, started.elapsed());
    result
}

fn rewrite<J: Handle>(ctx: Ctx, payload: Vec<u8>) -> BoxFuture<'static, Vec<u8>> {
    Box::pin(async move {
        let Ok(job) = serde_json::from_slice::<J>(&payload) else {
            return payload;
        };
        let job = job.handed_back(&ctx).await;
        serde_json::to_vec(&job).unwrap_or(payload)
    })
}

impl Kinds for Registrar {
    /// Consumes `J`'s queue with `J`'s settings.
    fn add<J: Handle>(&mut self) -> anyhow::Result<()> {
        let config = &self.ctx.config;
        let mut qc = crate::queue_config(config);
        qc.timer_granularity = J::timer_granularity(config.poll_min);
        let backend = RedisBackend::<J>::for_job(qc, self.consumer.clone())?;
        self.health.push(backend.health());
        self.hand_backs.push(HandBackOf {
            handle: backend.hand_back_handle(),
            rewrite: rewrite::<J>,
        });
        self.queues.push(J::QUEUE.to_owned());
        let worker = WorkerBuilder::new(format!("{}-{}", J::QUEUE, backend.consumer_name()))
            .backend(backend)
            .concurrency(J::concurrency(config.worker_concurrency))
            .data(self.ctx.clone())
            .build(run::<J>);
        let mut stop = self.stop.clone();
        self.runs.push(Box::pin(async move {
            let signal = async move {
                let _ = stop.wait_for(|s| *s).await;
                Ok::<(), std::io::Error>(())
            };
            let r = worker.run_until(signal).await.map_err(|e| e.to_string());
            (J::QUEUE, r)
        }));
        Ok(())
    }
}
