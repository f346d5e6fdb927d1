//! The apalis-core `Backend` over Redis Streams and the `.concurrency(n)` builder extension.

use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use apalis_core::backend::finalize::Ephemeral;
use apalis_core::backend::{Backend, BackendConfig};
use apalis_core::task::Task;
use apalis_core::task::builder::TaskBuilder;
use apalis_core::task::task_id::TaskId;
use apalis_core::worker::builder::WorkerBuilder;
use apalis_core::worker::context::WorkerContext;
use futures::FutureExt;
use futures::future::BoxFuture;
use redis::aio::ConnectionManager;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{QueueConfig, consumer_name, validate_queue};
use crate::consumer::{AckCmd, Shared};
use crate::error::{QueueError, Result};
use crate::handback::HandBack;
use crate::health::ConsumerHealth;
use crate::middleware::{AckLayer, JobMeta};
use crate::producer::manager_config;
use crate::tasks;
use crate::timer::{self, TimerGuard};

/// A worker backend reading one queue (`{prefix}:q:{queue}`) through the group `workers`.
///
/// Construction is cheap and synchronous; the Redis tasks start on the first poll.
pub struct RedisBackend<T> {
    shared: Arc<Shared>,
    client: redis::Client,
    ack_rx: Option<mpsc::UnboundedReceiver<AckCmd>>,
    worker: Option<WorkerContext>,
    running: Option<Running>,
    closing: Option<BoxFuture<'static, ()>>,
    /// Cancelled on drop: ends the claim and ack loops even if closing never finished.
    close: CancellationToken,
    closed: bool,
    _marker: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for RedisBackend<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBackend")
            .field("queue", &self.shared.queue)
            .field("consumer", &self.shared.consumer)
            .field("concurrency", &self.shared.concurrency())
            .finish_non_exhaustive()
    }
}

struct Running {
    stop: CancellationToken,
    ack_stop: CancellationToken,
    handles: Vec<JoinHandle<()>>,
    claimer: JoinHandle<()>,
    acker: JoinHandle<()>,
    timer: Arc<TimerGuard>,
}

impl Running {
    async fn shutdown(self) {
        self.stop.cancel();
        for h in self.handles {
            let _ = h.await;
        }
        drop(self.timer);
        self.ack_stop.cancel();
        let _ = self.claimer.await;
        let _ = self.acker.await;
    }
}

impl<T> RedisBackend<T> {
    /// A backend for `queue` (concurrency 1 until [`RedisBackend::with_concurrency`] or
    /// the builder's `.concurrency(n)`).
    pub fn new(config: QueueConfig, queue: &str) -> Result<Self> {
        Self::new_named(config, queue, consumer_name())
    }

    /// Like [`RedisBackend::new`] with a chosen consumer name (unique per process: a
    /// worker may use one name for all its queues, since each queue has its own group).
    pub fn new_named(
        config: QueueConfig,
        queue: &str,
        consumer: impl Into<String>,
    ) -> Result<Self> {
        validate_queue(queue)?;
        let consumer = consumer.into();
        if consumer.is_empty() {
            return Err(QueueError::Config("consumer name must not be empty".into()));
        }
        let client = config.client()?;
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Shared::new(Arc::new(config), queue.to_owned(), consumer, tx);
        Ok(Self {
            shared: Arc::new(shared),
            client,
            ack_rx: Some(rx),
            worker: None,
            running: None,
            closing: None,
            close: CancellationToken::new(),
            closed: false,
            _marker: PhantomData,
        })
    }

    /// The consumer of `J`'s queue, named `consumer`, with `J`'s attempts or the
    /// config's, whichever is fewer.
    pub fn for_job(mut config: QueueConfig, consumer: impl Into<String>) -> Result<Self>
    where
        T: crate::Job,
    {
        config.max_attempts = T::MAX_ATTEMPTS.min(config.max_attempts);
        Self::new_named(config, T::QUEUE, consumer)
    }

    /// Sets how many jobs this worker runs at once (min 1). Fetches never exceed free slots.
    pub fn with_concurrency(self, n: usize) -> Self {
        self.shared.concurrency.store(n.max(1), Ordering::Release);
        self
    }

    /// Health handle of this consumer (for `/healthz`).
    pub fn health(&self) -> ConsumerHealth {
        self.shared.health.clone()
    }

    /// Handle to hand back this consumer's held jobs (see [`HandBack`]).
    pub fn hand_back_handle(&self) -> HandBack {
        HandBack::new(self.shared.clone(), self.client.clone())
    }

    /// The consumer name in the group (`{hostname}-{pid}-{random}`).
    pub fn consumer_name(&self) -> &str {
        &self.shared.consumer
    }

    /// The queue name.
    pub fn queue(&self) -> &str {
        &self.shared.queue
    }

    fn start(&mut self, worker: &WorkerContext) -> Result<()> {
        tokio::runtime::Handle::try_current().map_err(|e| QueueError::NoRuntime(e.to_string()))?;
        let Some(rx) = self.ack_rx.take() else {
            return Ok(());
        };
        let mgr = ConnectionManager::new_lazy_with_config(self.client.clone(), manager_config())?;
        let stop = CancellationToken::new();
        let ack_stop = self.close.child_token();
        let worker = self.worker.clone().unwrap_or_else(|| worker.clone());
        let timer = timer::acquire(
            &self.shared.config.redis_url,
            &self.shared.keys,
            mgr.clone(),
            self.shared.config.timer_granularity,
        );
        let handles = vec![
            tokio::spawn(tasks::run_fetcher(
                self.shared.clone(),
                self.client.clone(),
                mgr.clone(),
                stop.clone(),
                Some(worker.clone()),
            )),
            tokio::spawn(tasks::run_watcher(worker, stop.clone())),
        ];
        let claimer = tokio::spawn(tasks::run_claimer(
            self.shared.clone(),
            mgr.clone(),
            stop.clone(),
            ack_stop.clone(),
        ));
        let acker = tokio::spawn(tasks::run_acker(
            self.shared.clone(),
            mgr,
            rx,
            ack_stop.clone(),
        ));
        self.running = Some(Running {
            stop,
            ack_stop,
            handles,
            claimer,
            acker,
            timer,
        });
        Ok(())
    }
}

impl<T> Drop for RedisBackend<T> {
    fn drop(&mut self) {
        if let Some(r) = self.running.take() {
            r.stop.cancel();
            r.ack_stop.cancel();
        }
        self.close.cancel();
    }
}

impl<T: DeserializeOwned + Send + 'static> Backend for RedisBackend<T> {
    type Task = Task<T>;
    type Error = QueueError;

    fn poll_ready(&mut self, cx: &mut Context<'_>, worker: &WorkerContext) -> Poll<Result<()>> {
        if self.running.is_none() && !self.closed && self.closing.is_none() {
            self.start(worker)?;
        }
        self.shared.waker.register(cx.waker());
        if self.shared.in_flight() >= self.shared.concurrency() {
            return Poll::Pending;
        }
        Poll::Ready(Ok(()))
    }

    fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
        _worker: &WorkerContext,
    ) -> Poll<Option<Result<Task<T>>>> {
        self.shared.waker.register(cx.waker());
        while let Some(d) = self.shared.take_next() {
            match serde_json::from_slice::<T>(&d.env.payload) {
                Ok(args) => {
                    let id = d.env.id.clone();
                    let attempt = d.env.attempt as usize;
                    let meta = JobMeta::new(&self.shared.queue, d);
                    let task = TaskBuilder::new(args)
                        .task_id(TaskId::from_string(id))
                        .attempt(attempt)
                        .max_attempts(self.shared.config.max_attempts as usize)
                        .data(meta)
                        .build();
                    return Poll::Ready(Some(Ok(task)));
                }
                Err(e) => {
                    tracing::warn!(queue = %self.shared.queue, job_id = %d.env.id, error = %e, "payload does not decode; moved to dead list");
                    self.shared.send_ack(AckCmd::Dead {
                        stream_id: d.stream_id.clone(),
                        env: d.env.clone(),
                        error: format!("payload decode error: {e}"),
                    });
                    self.shared.free_slot();
                }
            }
        }
        Poll::Pending
    }

    fn poll_close(&mut self, cx: &mut Context<'_>, _worker: &WorkerContext) -> Poll<Result<()>> {
        self.closed = true;
        if self.closing.is_none() {
            match self.running.take() {
                Some(r) => self.closing = Some(r.shutdown().boxed()),
                None => return Poll::Ready(Ok(())),
            }
        }
        match self.closing.as_mut().map(|f| f.poll_unpin(cx)) {
            Some(Poll::Pending) => Poll::Pending,
            _ => {
                self.closing = None;
                Poll::Ready(Ok(()))
            }
        }
    }
}

impl<T> BackendConfig for RedisBackend<T> {
    type Args = T;
    type Id = String;
    type Kind = Ephemeral;
    type Config = QueueConfig;
    type Layer = AckLayer;

    fn config(&self) -> &QueueConfig {
        &self.shared.config
    }

    fn middleware(&mut self, worker: &mut WorkerContext) -> AckLayer {
        self.worker = Some(worker.clone());
        AckLayer::new(self.shared.clone())
    }
}

/// `.concurrency(n)` for a `WorkerBuilder` whose backend is a [`RedisBackend`].
pub trait RedisWorkerExt: Sized {
    /// Runs up to `n` jobs at once (the backend never fetches more than the free slots).
    fn concurrency(self, n: usize) -> Self;
}

impl<Args, M> RedisWorkerExt for WorkerBuilder<Args, RedisBackend<Args>, M>
where
    Args: DeserializeOwned + Send + 'static,
{
    fn concurrency(self, n: usize) -> Self {
        self.map_backend(|b| b.with_concurrency(n))
    }
}
