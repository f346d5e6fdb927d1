//! `execution.fetch`: get fresh download URLs, stream every CSV part into one upload to the
//! result store (never holding a part or the result in memory), record columns and row
//! count → `succeeded`. A part that fails half-way aborts the upload: nothing half-written
//! is ever visible, and the retry starts the result again.

use super::{CallError, Handle, JobResult, call_amc, end, free_slot, on_call_error, schedule};
use crate::ctx::Ctx;
use common::amc::{AmcError, ErrorClass};
use common::execution::{self, Ending, ExecutionRow, Status, Stored, Target};
use common::ids::AmcExecutionId;
use common::jobs::FetchJob;
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

impl Handle for FetchJob {
    fn describe(&self, span: &tracing::Span) {
        span.record("execution.id", tracing::field::display(self.execution_id));
    }

    async fn handle(self, ctx: &Ctx) -> JobResult {
        fetch(ctx, &self).await
    }

    async fn handed_back(self, ctx: &Ctx) -> Self {
        super::step_handed_back(self, ctx).await
    }
}

async fn fetch(ctx: &Ctx, job: &FetchJob) -> JobResult {
    let taken = execution::lease(
        &ctx.db,
        job.execution_id,
        Status::Fetching,
        job.due,
        ctx.step_lease(),
    )
    .await?;
    let Some((row, mut held)) = taken else {
        return Ok(());
    };
    if row.cancel_requested_at.is_some() {
        return end(ctx, &row, &held, Ending::Cancelled).await;
    }
    let Some(target) = Target::load(&ctx.db, row.instance_id).await? else {
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
            out = &mut fetching => match out {
                Ok(o) => break o,
                Err(e) => {
                    // The queue retries this job: let it take the row again at once.
                    if let Err(re) = execution::release_lease(&ctx.db, &held, job.due).await {
                        tracing::warn!(error = %re, "giving the lease back failed; the reconciler takes over after it");
                    }
                    return Err(e);
                }
            },
            _ = renew.tick() => match execution::renew_lease(&ctx.db, &held, ctx.step_lease()).await? {
                Some(renewed) => held = renewed,
                // Another worker holds the row now: stop; its fetch finishes the run.
                None => return Ok(()),
            },
        }
    };
    match outcome {
        Outcome::Done(w) => {
            let stored = Stored {
                rows: w.rows,
                columns: columns_json(&w.columns, &w.types),
                location: w.location.clone(),
            };
            if let Some(done) = execution::succeed(&ctx.db, &held, &stored).await? {
                tracing::info!(rows = w.rows, "execution succeeded");
                if done.collection_id.is_some() {
                    // Its collection's next window was created queued with this end.
                    free_slot(ctx, row.instance_id).await?;
                }
            }
            Ok(())
        }
        Outcome::NotYet => {
            tracing::info!("results not downloadable yet; asking again later");
            schedule(ctx, &held, ctx.config.poll_min, None).await
        }
        Outcome::Failed(e) => on_call_error(ctx, &row, &held, e).await,
    }
}

async fn download(
    ctx: &Ctx,
    target: &Target,
    row: &ExecutionRow,
) -> Result<Outcome, super::JobError> {
    let amc_id = row
        .amc_execution_id
        .clone()
        .unwrap_or_else(|| AmcExecutionId(String::new()));
    'rounds: for round in 0..URL_ROUNDS {
        let urls = call_amc(ctx, target, None, |token| {
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
                    tracing::info!(round, "download URL expired; asking for fresh ones");
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
