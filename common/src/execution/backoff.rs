//! Retry and poll schedules.

use rand::Rng;
use std::time::Duration;

/// Exponential back-off with full jitter for transient failures: attempt 1 waits up to
/// `base`, attempt n up to `base · 2^(n-1)`, never more than `cap`, never less than half of
/// the un-jittered value (so retries do not bunch up at zero).
pub fn retry_delay(attempt: u32, base: Duration, cap: Duration) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
    let ceiling = exp.min(cap);
    let floor = ceiling / 2;
    let jitter = rand::thread_rng().gen_range(0..=(ceiling - floor).as_millis() as u64);
    floor + Duration::from_millis(jitter)
}

/// The next AMC status check for a run that has been running for `elapsed`: half the
/// elapsed time, clamped to `[min, max]`. Checks are frequent early (short runs finish
/// fast) and back off to `max` for runs that take hours.
pub fn poll_interval(elapsed: Duration, min: Duration, max: Duration) -> Duration {
    (elapsed / 2).clamp(min, max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delay_grows_and_is_capped() {
        let base = Duration::from_millis(100);
        let cap = Duration::from_secs(5);
        for attempt in 1..30 {
            let d = retry_delay(attempt, base, cap);
            assert!(d <= cap, "attempt {attempt}: {d:?}");
        }
        let d3 = retry_delay(3, base, cap);
        assert!(d3 >= Duration::from_millis(200) && d3 <= Duration::from_millis(400));
    }

    #[test]
    fn poll_interval_is_clamped() {
        let (min, max) = (Duration::from_secs(15), Duration::from_secs(300));
        assert_eq!(poll_interval(Duration::ZERO, min, max), min);
        assert_eq!(
            poll_interval(Duration::from_secs(100), min, max),
            Duration::from_secs(50)
        );
        assert_eq!(poll_interval(Duration::from_secs(3600), min, max), max);
    }
}
