//! Group commit: calls that arrive while earlier ones are being written are gathered and
//! handled as one batch (one statement, one transaction), so a write path's rate is bounded
//! by round trips times the batch size, not by one round trip per call.
//!
//! A [`Group`] owns a task that takes up to `max_batch` waiting calls whenever one of its
//! `max_in_flight` slots is free and hands them to the batch function. Each call carries
//! its own reply channel; the batch function answers every call it was given.

use std::future::Future;
use std::sync::Arc;
use tokio::sync::{Semaphore, mpsc, oneshot};

/// Limits of a group commit.
#[derive(Debug, Clone, Copy)]
pub struct BatchLimits {
    /// Most calls handled by one batch.
    pub max_batch: usize,
    /// Batches in flight at once (each typically holds one pooled connection).
    pub max_in_flight: usize,
}

impl Default for BatchLimits {
    fn default() -> Self {
        Self {
            max_batch: 256,
            max_in_flight: 2,
        }
    }
}

/// One call waiting in a batch: what was asked and where its answer goes.
#[derive(Debug)]
pub struct Call<Req, Resp> {
    pub request: Req,
    pub reply: oneshot::Sender<Resp>,
}

impl<Req, Resp> Call<Req, Resp> {
    /// Answers the caller (a caller that went away is ignored).
    pub fn answer(self, resp: Resp) {
        let _ = self.reply.send(resp);
    }
}

/// Handle to a group-commit task; cheap to clone. The task ends when every handle is
/// dropped, after handling what it holds.
pub struct Group<Req, Resp> {
    tx: mpsc::Sender<Call<Req, Resp>>,
}

impl<Req, Resp> Clone for Group<Req, Resp> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
        }
    }
}

impl<Req: Send + 'static, Resp: Send + 'static> Group<Req, Resp> {
    /// Starts the task (inside tokio). `batch` must answer every call it is given.
    pub fn start<F, Fut>(limits: BatchLimits, batch: F) -> Self
    where
        F: Fn(Vec<Call<Req, Resp>>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let max_batch = limits.max_batch.max(1);
        let max_in_flight = limits.max_in_flight.max(1);
        let (tx, mut rx) = mpsc::channel::<Call<Req, Resp>>(max_batch * max_in_flight * 4);
        tokio::spawn(async move {
            let slots = Arc::new(Semaphore::new(max_in_flight));
            loop {
                // Take a slot first: while every slot is busy, calls gather into the next batch.
                let Ok(slot) = slots.clone().acquire_owned().await else {
                    return;
                };
                let mut calls = Vec::with_capacity(max_batch);
                if rx.recv_many(&mut calls, max_batch).await == 0 {
                    return;
                }
                let fut = batch(calls);
                tokio::spawn(async move {
                    fut.await;
                    drop(slot);
                });
            }
        });
        Self { tx }
    }

    /// Adds a call to the next batch and waits for its answer; `None` when the task has
    /// stopped or dropped the call unanswered.
    pub async fn call(&self, request: Req) -> Option<Resp> {
        let (reply, answer) = oneshot::channel();
        self.tx.send(Call { request, reply }).await.ok()?;
        answer.await.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[tokio::test]
    async fn concurrent_calls_share_batches_and_each_gets_its_answer() {
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let seen = sizes.clone();
        let group: Group<u32, u32> = Group::start(
            BatchLimits {
                max_batch: 50,
                max_in_flight: 1,
            },
            move |calls| {
                seen.lock().unwrap().push(calls.len());
                async move {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    for c in calls {
                        let r = c.request * 2;
                        c.answer(r);
                    }
                }
            },
        );
        let answers = futures::future::join_all((0..200u32).map(|i| {
            let g = group.clone();
            async move { g.call(i).await }
        }))
        .await;
        for (i, a) in answers.into_iter().enumerate() {
            assert_eq!(a, Some(i as u32 * 2));
        }
        let sizes = sizes.lock().unwrap().clone();
        assert_eq!(sizes.iter().sum::<usize>(), 200);
        assert!(sizes.iter().all(|&n| n <= 50), "{sizes:?}");
        // While the first batch sleeps, the rest gather: far fewer batches than calls.
        assert!(sizes.len() <= 8, "{sizes:?}");
    }

    #[tokio::test]
    async fn an_unanswered_call_reads_as_none() {
        let group: Group<u32, u32> = Group::start(BatchLimits::default(), |calls| {
            drop(calls);
            async {}
        });
        assert_eq!(group.call(1).await, None);
    }
}
