//! `webhook.deliver`: one attempt of one webhook delivery. The attempt leases the row
//! (a twin finds it moved and drops; a fresh delivery comes leased from the dispatcher,
//! `crate::dispatch`, with no job), skips it while its endpoint is disabled, waits
//! without using an attempt while its endpoint has as many attempts in flight as it may
//! have in this process, and otherwise POSTs the event signed as Standard Webhooks asks
//! (a fresh `webhook-timestamp`, the same `webhook-id` every time). Any 2xx delivers; any
//! other answer, a timeout or a connection error is retried on the configured schedule
//! (`Retry-After` honoured within 1–2× the planned delay). The attempt is recorded in one
//! transaction with the endpoint's failing streak and the disable rule.

use super::{Handle, JobResult};
use crate::ctx::Ctx;
use common::event::DeliveryStatus;
use common::jobs::DeliverJob;
use common::webhook::delivery::{self, After, Attempt, BODY_KEPT, Work};
use rand::Rng;
use std::time::{Duration, Instant};

/// How long a delivery waits when its endpoint is busy (all its slots taken).
const BUSY_WAIT: Duration = Duration::from_secs(1);

impl Handle for DeliverJob {
    fn describe(&self, span: &tracing::Span) {
        span.record("delivery.id", tracing::field::display(self.delivery_id));
    }

    async fn handle(self, ctx: &Ctx) -> JobResult {
        let lease = ctx.config.webhook_timeout + Duration::from_secs(5);
        match delivery::take(&ctx.db, self.delivery_id, self.due, lease).await? {
            Some(work) => attempt_held(ctx, work).await,
            None => Ok(()),
        }
    }
}

/// One attempt of a delivery this process holds (leased by a job's `take`, or claimed by
/// the dispatcher): skipped while its endpoint is disabled, deferred while the endpoint's
/// slots are taken, otherwise sent and recorded, its next attempt pushed.
pub async fn attempt_held(ctx: &Ctx, work: Work) -> JobResult {
    if !work.enabled {
        delivery::skip(&ctx.db, &work).await?;
        return Ok(());
    }
    let Some(slot) = ctx.hooks.enter(work.endpoint_id).await else {
        if let Some(due) = delivery::defer(&ctx.db, &work, BUSY_WAIT).await? {
            enqueue_at(ctx, &work, due).await?;
        }
        return Ok(());
    };
    let (attempt, retry_after) = attempt(ctx, &work).await;
    // The endpoint's slot is for the request only; recording needs none.
    drop(slot);
    if attempt.succeeded() {
        // 2xx attempts that end together share one statement.
        let (endpoint, duration_ms) = (work.endpoint_id, attempt.duration_ms);
        let moved = ctx.delivered.record(work, attempt).await?;
        let outcome = if moved {
            DeliveryStatus::Delivered.as_str()
        } else {
            "lost_lease"
        };
        ctx.metrics
            .webhook_attempt(&endpoint.to_string(), outcome, duration_ms);
        return Ok(());
    }
    let after = next_of(ctx, &work, &attempt, retry_after);
    let recorded = delivery::record(
        &ctx.db,
        &work,
        &attempt,
        after,
        ctx.config.webhook_disable_after,
    )
    .await?;
    let outcome = match recorded {
        Some(r) => {
            if let Some(due) = r.next {
                enqueue_at(ctx, &work, due).await?;
            }
            if r.disabled {
                ctx.metrics.webhook_disabled.inc();
                tracing::warn!(endpoint.id = %work.endpoint_id, "webhook endpoint disabled by the rule");
            }
            r.status.as_str()
        }
        None => "lost_lease",
    };
    ctx.metrics
        .webhook_attempt(&work.endpoint_id.to_string(), outcome, attempt.duration_ms);
    Ok(())
}

/// Pushes the delivery's next attempt as a delayed job due at `due`.
async fn enqueue_at(ctx: &Ctx, work: &Work, due: chrono::DateTime<chrono::Utc>) -> JobResult {
    let wait = (due - chrono::Utc::now()).to_std().unwrap_or_default();
    ctx.producer
        .enqueue_after(
            &DeliverJob {
                delivery_id: work.id,
                due,
            },
            wait,
        )
        .await?;
    Ok(())
}

/// What follows `attempt`: delivered, another attempt (the schedule with jitter, or the
/// receiver's `Retry-After` within 1–2× of it), or the end of the schedule.
fn next_of(ctx: &Ctx, work: &Work, attempt: &Attempt, retry_after: Option<Duration>) -> After {
    if attempt.succeeded() {
        return After::Delivered;
    }
    let schedule = common::webhook::RetrySchedule(ctx.config.webhook_retry_schedule.clone());
    let failed = work.attempts as u32 + 1;
    match schedule.delay(failed, rand::thread_rng().r#gen(), retry_after) {
        Some(d) => After::RetryAt(
            common::execution::now_micros() + chrono::Duration::from_std(d).unwrap_or_default(),
        ),
        None => After::Failed,
    }
}

/// Sends the delivery once; its answer (up to 4 KB of the body) and `Retry-After`.
async fn attempt(ctx: &Ctx, work: &Work) -> (Attempt, Option<Duration>) {
    let started = Instant::now();
    let elapsed = || started.elapsed().as_millis().min(u128::from(u32::MAX)) as u32;
    let url = match url::Url::parse(&work.url) {
        Ok(u) => u,
        Err(e) => return (failure(format!("bad URL: {e}"), elapsed()), None),
    };
    if let Err(why) = ctx.hooks.allowed(&url) {
        return (failure(why, elapsed()), None);
    }
    let now = chrono::Utc::now();
    let body = work.body();
    let id = work.webhook_id();
    let secrets = work.secrets(&ctx.cipher, now);
    if secrets.is_empty() {
        return (
            failure(
                "the endpoint's secret cannot be read (encryption key)".into(),
                elapsed(),
            ),
            None,
        );
    }
    let signature = common::webhook::sign::signature_header(&secrets, &id, now.timestamp(), &body);
    let sent = ctx
        .hooks
        .client
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", &id)
        .header("webhook-timestamp", now.timestamp().to_string())
        .header("webhook-signature", signature)
        .body(body)
        .send()
        .await;
    let mut resp = match sent {
        Ok(r) => r,
        Err(e) => return (failure(describe(&e), elapsed()), None),
    };
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(common::amc::parse_retry_after);
    let mut kept = Vec::new();
    while kept.len() < BODY_KEPT {
        match resp.chunk().await {
            Ok(Some(c)) => kept.extend_from_slice(&c[..c.len().min(BODY_KEPT - kept.len())]),
            _ => break,
        }
    }
    let attempt = Attempt {
        status_code: Some(status),
        body: (!kept.is_empty()).then(|| String::from_utf8_lossy(&kept).into_owned()),
        error: None,
        duration_ms: elapsed(),
    };
    (attempt, retry_after)
}

fn failure(error: String, duration_ms: u32) -> Attempt {
    Attempt {
        status_code: None,
        body: None,
        error: Some(error),
        duration_ms,
    }
}

/// A connection error in words (with its cause: a refused address says why).
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    let mut out = kind.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
