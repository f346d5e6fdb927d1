//! `execution.fetch`: get fresh download URLs, stream every CSV part into one upload to the
//! result store (never holding a part or the result in memory), record columns and row
//! count → `succeeded`. A part that fails half-way aborts the upload: nothing half-written
//! is ever visible, and the retry starts the result again.

use super::{CallError, JobResult, call_amc, end, lease, on_call_error, schedule};
use crate::ctx::Ctx;
use crate::target::Target;
use common::amc::{AmcError, ErrorClass};
use common::execution::{self, Change, ExecutionRow, Status};
use common::ids::AmcExecutionId;
use common::jobs::{EXECUTION_FETCH, StepJobV1};
use common::results::{Written, columns_json};
use futures::StreamExt;

/// How often expired download URLs are asked for again within one fetch.
const URL_ROUNDS: usize = 3;

enum Outcome {
    Done(Written),
    /// Results not downloadable yet.
    NotYet,
    Failed(CallError),
}

pub async fn handle(ctx: &Ctx, job: StepJobV1) -> JobResult {
    let Some((row, mut held)) = lease(ctx, &job, Status::Fetching, ctx.step_lease()).await? else {
        return Ok(());
    };
    if row.cancel_requested_at.is_some() {
        return end(ctx, &row, Status::Fetching, held, Status::Cancelled, None).await;
    }
    let Some(target) = Target::load(&ctx.db, row.instance()).await? else {
        return Ok(());
    };
    // A fetch streams a whole result and may outlast one lease: renew it while streaming,
    // so a crashed fetch is taken over within one lease, not after the longest download.
    let renew_every = ctx.step_lease() / 3;
    let mut renew =
        tokio::time::interval_at(tokio::time::Instant::now() + renew_every, renew_every);
    let fetching = download(ctx, &target, &row);
    tokio::pin!(fetching);
    let outcome = loop {
        tokio::select! {
            out = &mut fetching => break out?,
            _ = renew.tick() => match renew_lease(ctx, &row, held).await? {
                Some(until) => held = until,
                // Another worker holds the row now: stop; its fetch finishes the run.
                None => return Ok(()),
            },
        }
    };
    match outcome {
        Outcome::Done(w) => {
            let change = Change::from(&[Status::Fetching])
                .due(Some(held))
                .set("row_count", w.rows as i64)
                .set("result_columns", columns_json(&w.columns))
                .set("result_location", w.location.clone())
                .set(
                    "next_check_at",
                    Option::<chrono::DateTime<chrono::Utc>>::None,
                )
                .set("attempt", 0)
                .reason(format!("{} rows stored", w.rows));
            if execution::transition(&ctx.db, row.execution_id(), Status::Succeeded, &change)
                .await?
                .is_some()
            {
                tracing::info!(execution.id = %row.id, rows = w.rows, "execution succeeded");
            }
            Ok(())
        }
        Outcome::NotYet => {
            tracing::info!(execution.id = %row.id, "results not downloadable yet; asking again later");
            schedule(
                ctx,
                &row,
                Status::Fetching,
                held,
                EXECUTION_FETCH,
                ctx.config.poll_min,
                None,
            )
            .await
        }
        Outcome::Failed(e) => {
            on_call_error(ctx, &row, Status::Fetching, held, EXECUTION_FETCH, e).await
        }
    }
}

/// Moves the lease forward from `held`; `None` if the row has moved meanwhile.
async fn renew_lease(
    ctx: &Ctx,
    row: &ExecutionRow,
    held: chrono::DateTime<chrono::Utc>,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, super::JobError> {
    let until =
        execution::now_micros() + chrono::Duration::from_std(ctx.step_lease()).unwrap_or_default();
    let change = Change::from(&[Status::Fetching])
        .due(Some(held))
        .set("next_check_at", until);
    Ok(execution::touch(&ctx.db, row.execution_id(), &change)
        .await?
        .map(|_| until))
}

async fn download(
    ctx: &Ctx,
    target: &Target,
    row: &ExecutionRow,
) -> Result<Outcome, super::JobError> {
    let amc_id = AmcExecutionId(row.amc_execution_id.clone().unwrap_or_default());
    'rounds: for round in 0..URL_ROUNDS {
        let urls = call_amc(ctx, target, |token| {
            let (amc, t, id) = (ctx.amc.clone(), target.clone(), amc_id.clone());
            async move { amc.download_urls(&t.amc(&token), &id).await }
        })
        .await;
        let urls = match urls {
            Ok(u) => u,
            Err(CallError::Amc(AmcError {
                class: ErrorClass::NotYet,
                ..
            })) => return Ok(Outcome::NotYet),
            Err(e) => return Ok(Outcome::Failed(e)),
        };
        let mut writer = ctx.results.writer(&row.id.to_string()).await?;
        for url in &urls {
            let resp = match ctx.amc.download(url).await {
                Ok(r) => r,
                Err(e) if matches!(e.class, ErrorClass::UrlExpired) => {
                    tracing::info!(execution.id = %row.id, round, "download URL expired; asking for fresh ones");
                    writer.abort().await;
                    continue 'rounds;
                }
                Err(e) => {
                    writer.abort().await;
                    return Ok(Outcome::Failed(CallError::Amc(e)));
                }
            };
            let body = resp.bytes_stream().boxed();
            if let Err(e) = writer.add_part(body).await {
                writer.abort().await;
                return Ok(Outcome::Failed(CallError::Amc(AmcError::new(
                    ErrorClass::Transient,
                    None,
                    e.to_string(),
                ))));
            }
        }
        return Ok(Outcome::Done(writer.finish().await?));
    }
    Ok(Outcome::Failed(CallError::Amc(AmcError::new(
        ErrorClass::Transient,
        None,
        "download URLs kept expiring",
    ))))
}
