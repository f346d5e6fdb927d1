//! Hand-back of held jobs at a hard stop: when a worker's shutdown deadline passes with
//! handlers still running, their entries are re-added to the stream (and the originals
//! acked + deleted) so another consumer runs them at once instead of after `claim_idle`.
//! Safe only for idempotent handlers: the stopping worker's run may still finish.

use std::sync::Arc;
use std::time::Duration;

use redis::AsyncConnectionConfig;

use crate::config::GROUP;
use crate::consumer::Shared;
use crate::error::Result;
use crate::scripts::HAND_BACK;

/// Entries re-added by one script call.
const CHUNK: usize = 200;

/// A job a consumer holds (fetched or running), as it will be handed back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldJob {
    /// Stream entry id of the original delivery.
    pub stream_id: String,
    /// Job id (kept on the re-added entry).
    pub job_id: String,
    /// Payload bytes; may be rewritten before handing back.
    pub payload: Vec<u8>,
    /// Attempt of the run (kept: a hand-back is not a failure).
    pub attempt: u32,
    /// Original enqueue time, unix ms.
    pub enqueued_ms: u64,
}

/// Handle to hand back the jobs a [`crate::RedisBackend`] holds; cheap to clone.
#[derive(Clone)]
pub struct HandBack {
    shared: Arc<Shared>,
    client: redis::Client,
}

impl std::fmt::Debug for HandBack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HandBack")
            .field("queue", &self.shared.queue)
            .finish_non_exhaustive()
    }
}

impl HandBack {
    pub(crate) fn new(shared: Arc<Shared>, client: redis::Client) -> Self {
        Self { shared, client }
    }

    /// The queue of the backend.
    pub fn queue(&self) -> &str {
        &self.shared.queue
    }

    /// Every job the consumer holds right now (running or fetched, not yet acked).
    pub fn held(&self) -> Vec<HeldJob> {
        let mut jobs: Vec<HeldJob> = self
            .shared
            .held_entries()
            .into_iter()
            .map(|(stream_id, env)| HeldJob {
                stream_id,
                job_id: env.id.clone(),
                payload: env.payload.clone(),
                attempt: env.attempt,
                enqueued_ms: env.enqueued_ms,
            })
            .collect();
        jobs.sort_by(|a, b| a.stream_id.cmp(&b.stream_id));
        jobs
    }

    /// Re-adds `jobs` at the end of the stream and acks + deletes their originals, each
    /// only if the original is still pending (a job whose ack won the race is skipped).
    /// The consumer stops refreshing them. Returns how many were re-added.
    pub async fn hand_back(&self, jobs: &[HeldJob]) -> Result<usize> {
        if jobs.is_empty() {
            return Ok(0);
        }
        let cfg = AsyncConnectionConfig::new()
            .set_response_timeout(Some(Duration::from_secs(3)))
            .set_connection_timeout(Some(Duration::from_secs(2)));
        let mut conn = self
            .client
            .get_multiplexed_async_connection_with_config(&cfg)
            .await?;
        let mut n = 0;
        for chunk in jobs.chunks(CHUNK) {
            let mut inv = HAND_BACK.key(&self.shared.keys.stream);
            inv.arg(GROUP);
            for j in chunk {
                inv.arg(&j.stream_id)
                    .arg(&j.job_id)
                    .arg(&j.payload)
                    .arg(j.attempt)
                    .arg(j.enqueued_ms);
            }
            n += inv.invoke_async::<usize>(&mut conn).await?;
            self.shared
                .release(chunk.iter().map(|j| j.stream_id.as_str()));
        }
        tracing::info!(queue = %self.shared.queue, handed_back = n, "running jobs handed back");
        Ok(n)
    }

    /// Hands back every held job unchanged; see [`HandBack::hand_back`].
    pub async fn hand_back_all(&self) -> Result<usize> {
        self.hand_back(&self.held()).await
    }
}
