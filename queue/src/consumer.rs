//! Consumer state shared by the backend, its middleware and its background tasks.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::task::AtomicWaker;
use tokio::sync::{Notify, mpsc};

use crate::config::{QueueConfig, QueueKeys};
use crate::envelope::{Envelope, jitter, now_ms, retry_delay};
use crate::health::ConsumerHealth;

/// A stream entry delivered to this consumer, not yet handed to the worker.
#[derive(Debug, Clone)]
pub(crate) struct Delivery {
    pub(crate) stream_id: String,
    pub(crate) env: Arc<Envelope>,
    pub(crate) reclaimed: bool,
}

/// What the ack task must do with a finished (or undecodable) entry.
#[derive(Debug)]
pub(crate) enum AckCmd {
    /// XACK + XDEL.
    Done { stream_id: String },
    /// Ack + delete and push a delayed copy (`env` already carries the next attempt).
    Retry {
        stream_id: String,
        env: Arc<Envelope>,
        due_ms: u64,
    },
    /// Ack + delete and append to the dead list.
    Dead {
        stream_id: String,
        env: Arc<Envelope>,
        error: String,
    },
}

impl AckCmd {
    pub(crate) fn stream_id(&self) -> &str {
        match self {
            Self::Done { stream_id }
            | Self::Retry { stream_id, .. }
            | Self::Dead { stream_id, .. } => stream_id,
        }
    }
}

/// How a handler run ended.
#[derive(Debug)]
pub(crate) enum Outcome {
    Ok,
    /// Retry later (after `after`, or the exponential back-off when `None`).
    Retry {
        error: String,
        after: Option<Duration>,
    },
    /// Never retry: straight to the dead list.
    Abort {
        error: String,
    },
}

/// State shared between the backend, the ack middleware and the background tasks.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: Arc<QueueConfig>,
    pub(crate) queue: String,
    pub(crate) keys: QueueKeys,
    pub(crate) consumer: String,
    pub(crate) concurrency: AtomicUsize,
    buffer: Mutex<VecDeque<Delivery>>,
    in_flight: AtomicUsize,
    held: Mutex<HashMap<String, Arc<Envelope>>>,
    pub(crate) waker: AtomicWaker,
    pub(crate) demand: Notify,
    acks: mpsc::UnboundedSender<AckCmd>,
    pub(crate) health: ConsumerHealth,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    pub(crate) fn new(
        config: Arc<QueueConfig>,
        queue: String,
        consumer: String,
        acks: mpsc::UnboundedSender<AckCmd>,
    ) -> Self {
        let keys = config.keys(&queue);
        let health = ConsumerHealth::for_block(config.block);
        Self {
            config,
            queue,
            keys,
            consumer,
            concurrency: AtomicUsize::new(1),
            buffer: Mutex::new(VecDeque::new()),
            in_flight: AtomicUsize::new(0),
            held: Mutex::new(HashMap::new()),
            waker: AtomicWaker::new(),
            demand: Notify::new(),
            acks,
            health,
        }
    }

    pub(crate) fn concurrency(&self) -> usize {
        self.concurrency.load(Ordering::Acquire).max(1)
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Slots that are neither running nor already fetched.
    pub(crate) fn free(&self) -> usize {
        let buf = lock(&self.buffer);
        self.concurrency()
            .saturating_sub(self.in_flight() + buf.len())
    }

    /// Adds fetched/claimed entries to the local buffer and wakes the worker.
    pub(crate) fn push_deliveries(&self, ds: Vec<Delivery>) {
        if ds.is_empty() {
            return;
        }
        {
            let mut held = lock(&self.held);
            for d in &ds {
                held.insert(d.stream_id.clone(), d.env.clone());
            }
        }
        lock(&self.buffer).extend(ds);
        self.waker.wake();
    }

    /// Pops the next buffered entry and counts it as running.
    pub(crate) fn take_next(&self) -> Option<Delivery> {
        let mut buf = lock(&self.buffer);
        let d = buf.pop_front()?;
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        Some(d)
    }

    /// Removes every buffered (fetched, not started) entry.
    pub(crate) fn drain_buffer(&self) -> Vec<Delivery> {
        lock(&self.buffer).drain(..).collect()
    }

    pub(crate) fn is_held(&self, stream_id: &str) -> bool {
        lock(&self.held).contains_key(stream_id)
    }

    pub(crate) fn held_ids(&self) -> Vec<String> {
        lock(&self.held).keys().cloned().collect()
    }

    /// Every entry this consumer holds (buffered or running) with its envelope.
    pub(crate) fn held_entries(&self) -> Vec<(String, Arc<Envelope>)> {
        lock(&self.held)
            .iter()
            .map(|(id, env)| (id.clone(), env.clone()))
            .collect()
    }

    pub(crate) fn release<'a>(&self, ids: impl IntoIterator<Item = &'a str>) {
        let mut held = lock(&self.held);
        for id in ids {
            held.remove(id);
        }
    }

    /// Queues an ack command for an entry that never ran (e.g. undecodable payload).
    pub(crate) fn send_ack(&self, cmd: AckCmd) {
        if let Err(e) = self.acks.send(cmd) {
            tracing::warn!(queue = %self.queue, stream_id = e.0.stream_id(), "ack task gone; entry stays pending until reclaimed");
        }
    }

    /// Records the end of a handler run: queues the ack and frees the slot.
    pub(crate) fn complete(&self, d: &Delivery, outcome: Outcome) {
        let stream_id = d.stream_id.clone();
        let env = &d.env;
        let cmd = match outcome {
            Outcome::Ok => AckCmd::Done { stream_id },
            Outcome::Abort { error } => {
                tracing::warn!(queue = %self.queue, job_id = %env.id, attempt = env.attempt, %error, "job aborted; moved to dead list");
                AckCmd::Dead {
                    stream_id,
                    env: env.clone(),
                    error,
                }
            }
            Outcome::Retry { error, after } => {
                if env.attempt.saturating_add(1) >= self.config.max_attempts {
                    tracing::warn!(queue = %self.queue, job_id = %env.id, attempt = env.attempt, %error, "job failed too often; moved to dead list");
                    AckCmd::Dead {
                        stream_id,
                        env: env.clone(),
                        error,
                    }
                } else {
                    let delay = after.unwrap_or_else(|| jitter(retry_delay(env.attempt)));
                    let due_ms =
                        now_ms() + u64::try_from(delay.as_millis()).unwrap_or(u64::MAX / 2);
                    tracing::info!(queue = %self.queue, job_id = %env.id, attempt = env.attempt, %error, retry_in_ms = delay.as_millis() as u64, "job failed; retry scheduled");
                    let mut next = (**env).clone();
                    next.attempt += 1;
                    AckCmd::Retry {
                        stream_id,
                        env: Arc::new(next),
                        due_ms,
                    }
                }
            }
        };
        self.send_ack(cmd);
        self.finish_slot();
    }

    /// A handler future was dropped before it finished (hard shutdown): free the slot and
    /// stop refreshing the entry, so it is reclaimed later.
    pub(crate) fn forget(&self, d: &Delivery) {
        self.release([d.stream_id.as_str()]);
        self.finish_slot();
    }

    /// Frees a slot taken by [`Shared::take_next`] for an entry that never ran.
    pub(crate) fn free_slot(&self) {
        self.finish_slot();
    }

    fn finish_slot(&self) {
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.demand.notify_one();
        self.waker.wake();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(n: u32) -> Delivery {
        Delivery {
            stream_id: format!("1-{n}"),
            env: Arc::new(Envelope::new(b"1".to_vec())),
            reclaimed: false,
        }
    }

    #[test]
    fn slot_accounting_and_outcomes() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let cfg = QueueConfig {
            max_attempts: 2,
            ..QueueConfig::default()
        };
        let s = Shared::new(Arc::new(cfg), "q".into(), "c".into(), tx);
        s.concurrency.store(3, Ordering::Release);
        assert_eq!(s.free(), 3);
        s.push_deliveries(vec![delivery(1), delivery(2)]);
        assert_eq!(s.free(), 1);
        let a = s.take_next().unwrap();
        assert_eq!(s.free(), 1);
        assert_eq!(s.in_flight(), 1);
        assert!(s.is_held("1-1"));
        s.complete(
            &a,
            Outcome::Retry {
                error: "x".into(),
                after: None,
            },
        );
        match rx.try_recv().unwrap() {
            AckCmd::Retry { env, due_ms, .. } => {
                assert_eq!(env.attempt, 1);
                assert!(due_ms >= now_ms() + 300);
            }
            other => panic!("unexpected {other:?}"),
        }
        let mut b = s.take_next().unwrap();
        b.env = Arc::new(Envelope {
            attempt: 1,
            ..(*b.env).clone()
        });
        s.complete(
            &b,
            Outcome::Retry {
                error: "y".into(),
                after: None,
            },
        );
        assert!(
            matches!(rx.try_recv().unwrap(), AckCmd::Dead { .. }),
            "attempt 1 of max 2 is the last"
        );
        assert_eq!(s.in_flight(), 0);
        assert_eq!(s.free(), 3);
        s.push_deliveries(vec![delivery(3)]);
        assert_eq!(s.drain_buffer().len(), 1);
    }
}
