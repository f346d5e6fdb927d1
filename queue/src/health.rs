//! Cheap health handle of a consumer loop, for a worker's `/healthz`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::envelope::now_ms;

/// Health of one consumer: healthy while its last Redis round trip succeeded recently.
#[derive(Debug, Clone)]
pub struct ConsumerHealth {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    last_ok_ms: AtomicU64,
    last_ok: AtomicBool,
    max_age_ms: u64,
}

impl ConsumerHealth {
    /// Health that tolerates `max_age` since the last successful round trip.
    pub fn new(max_age: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                last_ok_ms: AtomicU64::new(0),
                last_ok: AtomicBool::new(false),
                max_age_ms: u64::try_from(max_age.as_millis()).unwrap_or(u64::MAX),
            }),
        }
    }

    /// Health for a consumer with the given BLOCK time: 2 × block + 250 ms.
    pub(crate) fn for_block(block: Duration) -> Self {
        Self::new(block * 2 + Duration::from_millis(250))
    }

    /// True while the last round trip of the consumer loop succeeded within the allowed age.
    pub fn is_healthy(&self) -> bool {
        self.inner.last_ok.load(Ordering::Acquire)
            && now_ms().saturating_sub(self.inner.last_ok_ms.load(Ordering::Acquire))
                <= self.inner.max_age_ms
    }

    /// Time of the last successful round trip, if any.
    pub fn last_ok(&self) -> Option<SystemTime> {
        match self.inner.last_ok_ms.load(Ordering::Acquire) {
            0 => None,
            ms => Some(UNIX_EPOCH + Duration::from_millis(ms)),
        }
    }

    pub(crate) fn record_ok(&self) {
        self.inner.last_ok_ms.store(now_ms(), Ordering::Release);
        self.inner.last_ok.store(true, Ordering::Release);
    }

    pub(crate) fn record_err(&self) {
        self.inner.last_ok.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions() {
        let h = ConsumerHealth::new(Duration::from_millis(50));
        assert!(!h.is_healthy());
        assert!(h.last_ok().is_none());
        h.record_ok();
        assert!(h.is_healthy());
        h.record_err();
        assert!(!h.is_healthy());
        h.record_ok();
        std::thread::sleep(Duration::from_millis(80));
        assert!(!h.is_healthy(), "stale success is unhealthy");
        assert!(h.last_ok().is_some());
    }
}
