//! Job handlers, one module per kind, and what they share: leasing a row for a step,
//! rescheduling it, failing it, and calling AMC with a fresh token.
//!
//! Every step job carries the `due` (`next_check_at`) it was scheduled for, and every write
//! of a step is a compare-and-set on it: a twin (a redelivered job, a reconciler re-push)
//! finds the row moved and does nothing. Submit and fetch first *lease* their row by moving
//! `next_check_at` from `due` to now + lease; if the worker dies mid-step, the lease runs
//! out and the scheduler's reconciler re-enqueues. A status check takes no lease (see
//! [`poll`]).

pub mod admit;
pub mod cancel;
pub mod fetch;
pub mod poll;
pub mod submit;

use crate::ctx::Ctx;
use crate::steps::Next;
use crate::target::Target;
use crate::token::{TokenError, access_token, access_token_with};
use chrono::{DateTime, Utc};
use common::amc::{AmcError, AmcTarget, ErrorClass};
use common::execution::{
    self, Change, ExecutionRow, Reschedule, Status, TokenState, now_micros, retry_delay,
};
use common::ids::{ExecutionId, InstanceId};
use common::jobs::{AdmitJobV1, INSTANCE_ADMIT, StepJobV1};
use sea_orm::DbErr;
use std::future::Future;
use std::time::Duration;

/// Errors a handler returns: infrastructure only. AMC's errors are recorded on the row.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("database: {0}")]
    Db(#[from] DbErr),
    #[error("queue: {0}")]
    Queue(#[from] queue::QueueError),
    #[error("result store: {0}")]
    Results(#[from] common::results::ResultsError),
}

pub type JobResult = Result<(), JobError>;

/// Why calling AMC did not give an answer.
#[derive(Debug)]
pub enum CallError {
    Token(TokenError),
    Amc(AmcError),
}

impl Target {
    pub fn amc<'a>(&'a self, token: &'a str) -> AmcTarget<'a> {
        AmcTarget {
            region: self.region,
            entity_id: &self.entity_id,
            marketplace_id: &self.marketplace_id,
            instance_id: &self.instance_id,
            access_token: token,
        }
    }
}

/// Calls AMC with a fresh access token; on an auth failure refreshes once and retries.
pub async fn call_amc<T, F, Fut>(ctx: &Ctx, target: &Target, f: F) -> Result<T, CallError>
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = Result<T, AmcError>>,
{
    call_amc_with(ctx, target, None, f).await
}

/// [`call_amc`] with the connection's token state as the caller already read it.
pub async fn call_amc_with<T, F, Fut>(
    ctx: &Ctx,
    target: &Target,
    known: Option<TokenState>,
    f: F,
) -> Result<T, CallError>
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = Result<T, AmcError>>,
{
    let conn = target
        .connection_id
        .ok_or(CallError::Token(TokenError::NoConnection))?;
    let token = access_token_with(ctx, conn, known, None)
        .await
        .map_err(CallError::Token)?;
    match f(token.clone()).await {
        Err(e) if matches!(e.class, ErrorClass::Auth) => {
            tracing::info!(status = ?e.status, "AMC refused the access token; refreshing it once");
            let token = access_token(ctx, conn, Some(&token))
                .await
                .map_err(CallError::Token)?;
            f(token).await.map_err(CallError::Amc)
        }
        other => other.map_err(CallError::Amc),
    }
}

/// Leases the row for a step: `next_check_at` moves from `due` to now + `lease`.
/// `None` when a twin already took (or finished) this step.
pub async fn lease(
    ctx: &Ctx,
    job: &StepJobV1,
    status: Status,
    lease: Duration,
) -> Result<Option<(ExecutionRow, DateTime<Utc>)>, JobError> {
    let until = now_micros() + chrono::Duration::from_std(lease).unwrap_or_default();
    let change = Change::from(&[status]).set("next_check_at", until);
    let change = match job.due {
        Some(due) => change.due(Some(due)),
        None => change.guard("next_check_at IS NULL OR next_check_at <= now()"),
    };
    Ok(execution::touch(&ctx.db, job.execution_id, &change)
        .await?
        .map(|row| (row, until)))
}

/// Schedules the row's next step `after` from now and pushes the delayed job for it (in
/// a group commit with the other steps rescheduled at the same moment).
pub async fn schedule(
    ctx: &Ctx,
    row: &ExecutionRow,
    status: Status,
    held: DateTime<Utc>,
    queue_name: &'static str,
    after: Duration,
    attempt: Option<i32>,
) -> JobResult {
    let next = now_micros() + chrono::Duration::from_std(after).unwrap_or_default();
    let step = Reschedule {
        id: row.execution_id(),
        status,
        due: held,
        next,
        attempt,
    };
    ctx.steps
        .reschedule(Next {
            queue: queue_name,
            step,
        })
        .await
        .map_err(DbErr::from)?;
    Ok(())
}

/// Ends the run `to` (failed or cancelled) from `status`, and frees its slot.
pub async fn end(
    ctx: &Ctx,
    row: &ExecutionRow,
    status: Status,
    held: DateTime<Utc>,
    to: Status,
    error: Option<(&str, &str)>,
) -> JobResult {
    let mut change = Change::from(&[status])
        .due(Some(held))
        .set("next_check_at", Option::<DateTime<Utc>>::None);
    if let Some((code, message)) = error {
        change = change
            .set("error_code", code.to_string())
            .set("error_message", message.to_string())
            .reason(format!("{code}: {message}"));
    }
    if execution::transition(&ctx.db, row.execution_id(), to, &change)
        .await?
        .is_some()
    {
        tracing::info!(execution.id = %row.id, status = %to, "execution ended");
        free_slot(ctx, row.instance()).await?;
    }
    Ok(())
}

/// A slot of the instance's account may be free: admit the next queued runs.
pub async fn free_slot(ctx: &Ctx, instance: InstanceId) -> JobResult {
    ctx.producer
        .push(
            INSTANCE_ADMIT,
            &AdmitJobV1 {
                instance_id: instance,
            },
        )
        .await?;
    Ok(())
}

/// What to do after AMC (or LWA) gave no usable answer for a step.
pub async fn on_call_error(
    ctx: &Ctx,
    row: &ExecutionRow,
    status: Status,
    held: DateTime<Utc>,
    queue_name: &'static str,
    err: CallError,
) -> JobResult {
    let id = row.execution_id();
    let transient = |message: String| async move {
        let attempt = row.attempt + 1;
        if attempt as u32 > ctx.config.max_attempts {
            let msg = format!("gave up after {} attempts: {message}", attempt - 1);
            return end(
                ctx,
                row,
                status,
                held,
                Status::Failed,
                Some(("amc_unavailable", &msg)),
            )
            .await;
        }
        let delay = retry_delay(
            attempt as u32,
            ctx.config.poll_min.min(Duration::from_secs(1)),
            Duration::from_secs(300),
        );
        tracing::warn!(execution.id = %id, attempt, delay_ms = delay.as_millis() as u64, error = %message, "transient failure; retrying");
        schedule(ctx, row, status, held, queue_name, delay, Some(attempt)).await
    };
    match err {
        CallError::Amc(e) => match e.class {
            ErrorClass::RateLimited { retry_after } => {
                let wait = retry_after
                    .unwrap_or(Duration::from_secs(1))
                    .min(Duration::from_secs(300));
                tracing::info!(execution.id = %id, wait_ms = wait.as_millis() as u64, "AMC throttled the call; waiting");
                schedule(ctx, row, status, held, queue_name, wait, None).await
            }
            ErrorClass::Permanent | ErrorClass::NotFound => {
                end(
                    ctx,
                    row,
                    status,
                    held,
                    Status::Failed,
                    Some(("amc_error", &e.message)),
                )
                .await
            }
            _ => transient(e.to_string()).await,
        },
        CallError::Token(TokenError::Db(e)) => Err(e.into()),
        CallError::Token(TokenError::Transient(m)) => transient(m).await,
        CallError::Token(t @ TokenError::NoConnection) => {
            end(
                ctx,
                row,
                status,
                held,
                Status::Failed,
                Some(("no_connection", &t.to_string())),
            )
            .await
        }
        CallError::Token(TokenError::ReauthRequired(reason)) => {
            if row.amc_execution_id.is_some() {
                // Already at AMC: keep the id and check again later, once re-authorised.
                schedule(
                    ctx,
                    row,
                    status,
                    held,
                    queue_name,
                    ctx.config.poll_max,
                    None,
                )
                .await
            } else {
                let msg = format!("the Amazon connection needs to be authorised again: {reason}");
                end(
                    ctx,
                    row,
                    status,
                    held,
                    Status::Failed,
                    Some(("reauth_required", &msg)),
                )
                .await
            }
        }
    }
}

/// The row this job is about, or `None` when it no longer exists.
pub async fn load(ctx: &Ctx, id: ExecutionId) -> Result<Option<ExecutionRow>, JobError> {
    Ok(execution::find(&ctx.db, id).await?)
}
