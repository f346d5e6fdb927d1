//! Backend middleware: turns each handler result (or panic) into an ack, a retry or a
//! dead letter, and frees the consumer slot.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::task::{Context, Poll};

use apalis_core::error::{AbortError, BoxDynError, RetryAfterError};
use apalis_core::layers::{Layer, Service};
use apalis_core::task::Task;
use futures::FutureExt;
use futures::future::BoxFuture;

use crate::consumer::{Delivery, Outcome, Shared};

/// Per-job information, readable by a handler as `Data<JobMeta>`.
#[derive(Debug, Clone)]
pub struct JobMeta {
    /// Job id (UUID v7 string).
    pub job_id: String,
    /// Queue name.
    pub queue: String,
    /// 0-based attempt of this run (apalis' `Attempt` extractor shows this + 1).
    pub attempt: u32,
    /// Enqueue wall-clock time, unix ms.
    pub enqueued_ms: u64,
    /// True if the job was taken over from a dead consumer.
    pub reclaimed: bool,
    /// When the job became runnable, unix ms: its stream entry's id (pushed, promoted from
    /// the delayed set, or handed back); `enqueued_ms` is its first enqueue.
    pub runnable_ms: u64,
    /// The trace context the job carries (see `Producer::with_trace`).
    pub trace: Option<String>,
    pub(crate) delivery: Delivery,
}

impl JobMeta {
    pub(crate) fn new(queue: &str, delivery: Delivery) -> Self {
        Self {
            job_id: delivery.env.id.clone(),
            queue: queue.to_owned(),
            attempt: delivery.env.attempt,
            enqueued_ms: delivery.env.enqueued_ms,
            reclaimed: delivery.reclaimed,
            runnable_ms: crate::stats::stream_id_ms(&delivery.stream_id)
                .unwrap_or(delivery.env.enqueued_ms),
            trace: crate::envelope::trace_of(&delivery.env.payload),
            delivery,
        }
    }
}

/// A handler panicked; the job is retried like after an `Err`.
#[derive(Debug, thiserror::Error)]
#[error("handler panicked: {0}")]
pub struct HandlerPanic(pub String);

/// Layer returned by [`crate::RedisBackend`]'s `BackendConfig::middleware`.
#[derive(Debug, Clone)]
pub struct AckLayer {
    shared: Arc<Shared>,
}

impl AckLayer {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }
}

impl<S> Layer<S> for AckLayer {
    type Service = AckService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AckService {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// Service of [`AckLayer`].
#[derive(Debug, Clone)]
pub struct AckService<S> {
    inner: S,
    shared: Arc<Shared>,
}

struct SlotGuard {
    shared: Arc<Shared>,
    delivery: Delivery,
    done: bool,
}

impl SlotGuard {
    fn finish(mut self, outcome: Outcome) {
        self.done = true;
        self.shared.complete(&self.delivery, outcome);
    }
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        if !self.done {
            self.shared.forget(&self.delivery);
        }
    }
}

fn classify(e: &BoxDynError) -> Outcome {
    if e.downcast_ref::<AbortError>().is_some() {
        Outcome::Abort {
            error: e.to_string(),
        }
    } else if let Some(r) = e.downcast_ref::<RetryAfterError>() {
        Outcome::Retry {
            error: e.to_string(),
            after: Some(r.get_duration()),
        }
    } else {
        Outcome::Retry {
            error: e.to_string(),
            after: None,
        }
    }
}

fn panic_message(p: &(dyn Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic payload".to_owned()
    }
}

impl<S, T> Service<Task<T>> for AckService<S>
where
    S: Service<Task<T>>,
    S::Future: Send + 'static,
    S::Error: Into<BoxDynError>,
    S::Response: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxDynError;
    type Future = BoxFuture<'static, Result<S::Response, BoxDynError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, task: Task<T>) -> Self::Future {
        let meta = task.data().get::<JobMeta>().map(|m| m.delivery.clone());
        let fut = self.inner.call(task);
        let Some(delivery) = meta else {
            return Box::pin(async move { fut.await.map_err(Into::into) });
        };
        let guard = SlotGuard {
            shared: self.shared.clone(),
            delivery,
            done: false,
        };
        Box::pin(async move {
            match AssertUnwindSafe(fut).catch_unwind().await {
                Ok(Ok(r)) => {
                    guard.finish(Outcome::Ok);
                    Ok(r)
                }
                Ok(Err(e)) => {
                    let e: BoxDynError = e.into();
                    guard.finish(classify(&e));
                    Err(e)
                }
                Err(p) => {
                    let msg = panic_message(p.as_ref());
                    guard.finish(Outcome::Retry {
                        error: format!("handler panicked: {msg}"),
                        after: None,
                    });
                    Err(Box::new(HandlerPanic(msg)) as BoxDynError)
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn classification() {
        let e: BoxDynError = Box::new(AbortError::new("bad"));
        assert!(matches!(classify(&e), Outcome::Abort { .. }));
        let e: BoxDynError = Box::new(RetryAfterError::new("later", Duration::from_secs(3)));
        assert!(
            matches!(classify(&e), Outcome::Retry { after: Some(d), .. } if d == Duration::from_secs(3))
        );
        let e: BoxDynError = "plain".into();
        assert!(matches!(classify(&e), Outcome::Retry { after: None, .. }));
        assert_eq!(panic_message(&"boom"), "boom");
    }
}
