//! When a failed delivery is tried again: the configured schedule
//! (`AMP_WEBHOOK_RETRY_SCHEDULE`, by default Svix's 5 s, 5 min, 30 min, 2 h, 5 h, 10 h,
//! 10 h: eight attempts in all) with ±20 % jitter; a receiver's `Retry-After` is honoured
//! within 1–2× the planned delay. 429 and 5xx are treated alike.

use std::time::Duration;

/// The delays after each failed attempt; attempts in all = delays + 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule(pub Vec<Duration>);

impl RetrySchedule {
    /// Attempts in all.
    pub fn attempts(&self) -> u32 {
        self.0.len() as u32 + 1
    }

    /// The delay after the `failed`-th failed attempt (1 for the first), with jitter from
    /// `unit` (a draw in `[0, 1)`: ±20 %) and the receiver's `Retry-After` (kept within
    /// 1–2× the planned delay); `None` when no attempt is left.
    pub fn delay(&self, failed: u32, unit: f64, retry_after: Option<Duration>) -> Option<Duration> {
        let planned = *self.0.get(failed.checked_sub(1)? as usize)?;
        let jittered = planned.mul_f64(0.8 + 0.4 * unit.clamp(0.0, 1.0));
        Some(match retry_after {
            Some(ra) => ra.clamp(planned, planned * 2),
            None => jittered,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svix() -> RetrySchedule {
        RetrySchedule(crate::config::parse_schedule("5s,5m,30m,2h,5h,10h,10h").unwrap())
    }

    #[test]
    fn eight_attempts_on_svix_schedule_with_jitter() {
        let s = svix();
        assert_eq!(s.attempts(), 8);
        assert_eq!(s.delay(1, 0.5, None), Some(Duration::from_secs(5)));
        assert_eq!(s.delay(1, 0.0, None), Some(Duration::from_secs(4)));
        assert_eq!(s.delay(2, 1.0, None), Some(Duration::from_secs(360)));
        assert_eq!(s.delay(7, 0.5, None), Some(Duration::from_secs(36_000)));
        assert_eq!(s.delay(8, 0.5, None), None, "no ninth attempt");
        assert_eq!(s.delay(0, 0.5, None), None);
    }

    #[test]
    fn retry_after_is_kept_within_one_to_two_times_the_plan() {
        let s = svix();
        let five = Duration::from_secs(5);
        assert_eq!(s.delay(1, 0.5, Some(Duration::from_secs(1))), Some(five));
        assert_eq!(
            s.delay(1, 0.5, Some(Duration::from_secs(7))),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            s.delay(1, 0.5, Some(Duration::from_secs(3600))),
            Some(five * 2)
        );
    }
}
