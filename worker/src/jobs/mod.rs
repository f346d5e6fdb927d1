//! Job handlers, one module per kind, the [`Handle`] trait they implement, [`register`]
//! (every kind of `common::job_kinds!`, each with its handler), and what the steps share: calling AMC with a
//! fresh token, rescheduling, ending a run, and answering AMC's failures.
//!
//! Every step job carries the `due` (`next_check_at`) it was scheduled for, and every move
//! of a step is one of `common::execution`'s named transitions, a compare-and-set on the
//! row it holds ([`Held`]): a twin (a redelivered job, a reconciler re-push) finds the row
//! moved and does nothing. Submit and fetch first *lease* their row; a status check takes
//! no lease (see [`poll`]).

pub mod admit;
pub mod cancel;
pub mod deliver;
pub mod fetch;
pub mod poll;
pub mod submit;

use crate::ctx::Ctx;
use crate::steps::Next;
use crate::token::TokenError;
use common::amc::{AmcError, ErrorClass};
use common::connection::TokenState;
use common::execution::{
    self, Ending, ErrorCode, ExecutionRow, Held, Reschedule, Target, now_micros, retry_delay,
};
use common::ids::InstanceId;
use common::jobs::{AdmitJob, StepJob};
use sea_orm::DbErr;
use std::future::Future;
use std::time::Duration;

/// What the list of job kinds is given to, one kind at a time: the worker's
/// [`Registrar`](crate::registry::Registrar) (a consumer per kind) and the test driver
/// ([`crate::testing::Driver`]).
pub trait Kinds {
    fn add<J: Handle>(&mut self) -> anyhow::Result<()>;
}

/// Adds every job kind of `common::job_kinds!` (the one list; each must have its
/// [`Handle`] impl here). A new kind is its handler module and its line in that list.
pub fn register(r: &mut impl Kinds) -> anyhow::Result<()> {
    macro_rules! add_each {
        ($($job:ty),+ $(,)?) => {
            $( r.add::<$job>()?; )+
        };
    }
    common::job_kinds!(add_each);
    Ok(())
}

/// A job kind's handler.
pub trait Handle: queue::Job + Sized {
    /// Runs one job. `Ok` once its row moved (or had already moved); `Err` only for
    /// infrastructure failures, which the queue retries.
    fn handle(self, ctx: &Ctx) -> impl Future<Output = JobResult> + Send;

    /// Records what the job is about on its span (`registry::job_span`'s `execution.id`,
    /// `delivery.id` or `instance.id`), so that its log lines name it. One span per job:
    /// a second, nested one would double what tracing costs a status check.
    fn describe(&self, _span: &tracing::Span) {}

    /// A job this worker still runs when a hard stop hands it back to the queue,
    /// rewritten for the worker that takes it next (by default, as it is).
    fn handed_back(self, _ctx: &Ctx) -> impl Future<Output = Self> + Send {
        async { self }
    }
}

/// A step job handed back at a hard stop carries the row's current `next_check_at`: the
/// stopping worker leased the row (moved it), and a copy with the old `due` would drop as
/// a twin. With the lease value the next worker takes the lease over at once, and the
/// stopping worker's late compare-and-set (if any) fails.
pub async fn step_handed_back<K>(job: StepJob<K>, ctx: &Ctx) -> StepJob<K> {
    match execution::current_due(&ctx.db, job.execution_id).await {
        Ok(Some(leased)) => StepJob::new(job.execution_id, Some(leased)),
        _ => job,
    }
}

/// Errors a handler returns: infrastructure only. AMC's errors are recorded on the row.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("database")]
    Db(#[from] DbErr),
    #[error("queue")]
    Queue(#[from] queue::QueueError),
    #[error("result store")]
    Results(#[from] common::results::ResultsError),
    #[error("batched step")]
    Steps(#[from] crate::steps::StepsError),
}

pub type JobResult = Result<(), JobError>;

pub use common::connection::CallError;

/// Calls AMC with a fresh access token (starting from the connection's state when the
/// caller already read it); on an auth failure refreshes once and retries.
pub async fn call_amc<T, F, Fut>(
    ctx: &Ctx,
    target: &Target,
    known: Option<TokenState>,
    f: F,
) -> Result<T, CallError>
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = Result<T, AmcError>>,
{
    common::connection::call_amc(&ctx.tokens(), target.connection_id, known, f).await
}

/// Schedules the held row's next step `after` from now and pushes its delayed job (in a
/// group commit with the other steps rescheduled at the same moment).
pub async fn schedule(ctx: &Ctx, held: &Held, after: Duration, attempt: Option<i32>) -> JobResult {
    let next = now_micros() + chrono::Duration::from_std(after).unwrap_or_default();
    ctx.steps
        .reschedule(Next {
            trace: common::telemetry::trace::outgoing(),
            step: Reschedule {
                id: held.id,
                status: held.status,
                due: held.at,
                next,
                attempt,
            },
        })
        .await?;
    Ok(())
}

/// Ends the held run (failed or cancelled) and frees its slot.
pub async fn end(ctx: &Ctx, row: &ExecutionRow, held: &Held, ending: Ending) -> JobResult {
    if execution::end(&ctx.db, held, &ending).await?.is_some() {
        tracing::info!(execution.id = %row.id, status = ?ending, "execution ended");
        free_slot(ctx, row.instance_id).await?;
    }
    Ok(())
}

/// A slot of the instance's account may be free: admit the next queued runs.
pub async fn free_slot(ctx: &Ctx, instance: InstanceId) -> JobResult {
    ctx.producer
        .enqueue(&AdmitJob {
            instance_id: instance,
        })
        .await?;
    Ok(())
}

/// What to do after AMC (or LWA) gave no usable answer for a held step.
pub async fn on_call_error(
    ctx: &Ctx,
    row: &ExecutionRow,
    held: &Held,
    err: CallError,
) -> JobResult {
    let fail = |code, message: String| end(ctx, row, held, Ending::failed(code, message));
    match err {
        CallError::Amc(e) => match e.class {
            ErrorClass::RateLimited { retry_after } => {
                let wait = retry_after
                    .unwrap_or(Duration::from_secs(1))
                    .min(Duration::from_secs(300));
                tracing::info!(execution.id = %row.id, wait_ms = wait.as_millis() as u64, "AMC throttled the call; waiting");
                schedule(ctx, held, wait, None).await
            }
            ErrorClass::Permanent | ErrorClass::NotFound => {
                fail(ErrorCode::AmcError, e.message).await
            }
            _ => transient(ctx, row, held, e.to_string()).await,
        },
        CallError::Token(TokenError::Db(e)) => Err(e.into()),
        CallError::Token(TokenError::Transient(m)) => transient(ctx, row, held, m).await,
        CallError::Token(t @ TokenError::NoConnection) => {
            fail(ErrorCode::NoConnection, t.to_string()).await
        }
        CallError::Token(TokenError::ReauthRequired(reason)) => {
            if row.amc_execution_id.is_some() {
                // Already at AMC: keep the id and check again later, once re-authorised.
                schedule(ctx, held, ctx.config.poll_max, None).await
            } else {
                let msg = format!("the Amazon connection needs to be authorised again: {reason}");
                fail(ErrorCode::ReauthRequired, msg).await
            }
        }
    }
}

/// A transient failure: retried with back-off, until the attempts run out.
async fn transient(ctx: &Ctx, row: &ExecutionRow, held: &Held, message: String) -> JobResult {
    let attempt = row.attempt + 1;
    if attempt as u32 > ctx.config.max_attempts {
        let msg = format!("gave up after {} attempts: {message}", attempt - 1);
        return end(
            ctx,
            row,
            held,
            Ending::failed(ErrorCode::AmcUnavailable, msg),
        )
        .await;
    }
    let delay = retry_delay(
        attempt as u32,
        ctx.config.poll_min.min(Duration::from_secs(1)),
        Duration::from_secs(300),
    );
    tracing::warn!(execution.id = %row.id, attempt, delay_ms = delay.as_millis() as u64, error = %message, "transient failure; retrying");
    schedule(ctx, held, delay, Some(attempt)).await
}
