//! A schedule's cron rule in its IANA time zone: the ticks it fires at, as UTC instants.
//!
//! Parsing and evaluation are `croner`'s, which follows Vixie cron across daylight-saving
//! changes: a fixed local time that falls in the spring-forward gap fires once, right
//! after the gap; one that occurs twice in the fall-back hour fires once, at its first
//! occurrence; interval rules (`*/15 * * * *`, `0 * * * *`) follow elapsed time.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;
use std::str::FromStr;

/// A checked cron rule: 5 fields, 6 with seconds first, or `@hourly`, `@daily`,
/// `@weekly`, `@monthly` (and `@yearly`).
#[derive(Debug, Clone)]
pub struct CronRule {
    text: String,
    cron: Cron,
}

impl CronRule {
    /// Parses a rule; the message says what is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        if t.is_empty() {
            return Err("must not be empty".into());
        }
        let fields = t.split_whitespace().count();
        if !t.starts_with('@') && !(5..=6).contains(&fields) {
            return Err(format!(
                "`{t}` has {fields} fields: use 5 (minute hour day month weekday), 6 with seconds first, or @hourly, @daily, @weekly, @monthly"
            ));
        }
        let cron =
            Cron::from_str(t).map_err(|e| format!("`{t}` is not a valid cron rule ({e})"))?;
        let rule = Self {
            text: t.to_owned(),
            cron,
        };
        // A rule that never matches (`0 0 31 2 *`) has no next tick.
        if rule
            .next_after(Utc::now() - chrono::Duration::days(1), chrono_tz::UTC)
            .is_none()
        {
            return Err(format!("`{t}` never fires"));
        }
        Ok(rule)
    }

    /// The rule as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The first tick strictly after `t`, in `tz`.
    pub fn next_after(&self, t: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        let local = t.with_timezone(&tz);
        self.cron
            .find_next_occurrence(&local, false)
            .ok()
            .map(|d| d.with_timezone(&Utc))
    }

    /// The ticks in `[from, to]` (both inclusive), at most `limit` of them, oldest first.
    pub fn ticks_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        tz: Tz,
        limit: usize,
    ) -> Vec<DateTime<Utc>> {
        let mut out = Vec::new();
        let mut cursor = from.with_timezone(&tz);
        let mut inclusive = true;
        while out.len() < limit {
            let Ok(next) = self.cron.find_next_occurrence(&cursor, inclusive) else {
                break;
            };
            if next.with_timezone(&Utc) > to {
                break;
            }
            out.push(next.with_timezone(&Utc));
            cursor = next;
            inclusive = false;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn berlin() -> Tz {
        "Europe/Berlin".parse().unwrap()
    }

    #[test]
    fn rules_are_checked() {
        for ok in [
            "*/15 * * * *",
            "*/2 * * * * *",
            "@hourly",
            "@daily",
            "@weekly",
            "@monthly",
            "30 2 * * 1-5",
        ] {
            assert!(CronRule::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "* * *",
            "61 * * * *",
            "* * * * * * * *",
            "@sometimes",
            "0 0 31 2 *",
        ] {
            assert!(CronRule::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_time_in_the_spring_forward_gap_fires_once_right_after_it() {
        let rule = CronRule::parse("30 2 * * *").unwrap();
        let day = rule.ticks_between(
            utc("2027-03-27T12:00:00Z"),
            utc("2027-03-29T12:00:00Z"),
            berlin(),
            10,
        );
        // 2027-03-28: 02:00 CET jumps to 03:00 CEST; 02:30 does not exist: 03:00 local.
        assert_eq!(
            day,
            [utc("2027-03-28T01:00:00Z"), utc("2027-03-29T00:30:00Z")]
        );
    }

    #[test]
    fn a_time_in_the_fall_back_hour_fires_once_at_its_first_occurrence() {
        let rule = CronRule::parse("30 2 * * *").unwrap();
        let day = rule.ticks_between(
            utc("2027-10-30T12:00:00Z"),
            utc("2027-11-01T12:00:00Z"),
            berlin(),
            10,
        );
        // 2027-10-31: 03:00 CEST goes back to 02:00 CET; 02:30 happens twice: the first.
        assert_eq!(
            day,
            [utc("2027-10-31T00:30:00Z"), utc("2027-11-01T01:30:00Z")]
        );
    }

    #[test]
    fn hourly_rules_follow_elapsed_time_across_the_changes() {
        let rule = CronRule::parse("0 * * * *").unwrap();
        let (tz, limit) = (berlin(), 100);
        let march = rule.ticks_between(
            utc("2027-03-27T23:00:00Z"),
            utc("2027-03-28T21:59:59Z"),
            tz,
            limit,
        );
        assert_eq!(march.len(), 23, "{march:?}");
        let october = rule.ticks_between(
            utc("2027-10-30T22:00:00Z"),
            utc("2027-10-31T22:59:59Z"),
            tz,
            limit,
        );
        assert_eq!(october.len(), 25, "{october:?}");
        // Every tick one hour after the last: elapsed time, never a repeat or a hole.
        for w in october.windows(2) {
            assert_eq!(w[1] - w[0], chrono::Duration::hours(1));
        }
    }

    #[test]
    fn seconds_rules_and_next_after() {
        let rule = CronRule::parse("*/2 * * * * *").unwrap();
        let t = utc("2026-12-01T10:00:01Z");
        assert_eq!(
            rule.next_after(t, chrono_tz::UTC),
            Some(utc("2026-12-01T10:00:02Z"))
        );
        let ticks = rule.ticks_between(
            utc("2026-12-01T10:00:00Z"),
            utc("2026-12-01T10:00:09Z"),
            chrono_tz::UTC,
            100,
        );
        assert_eq!(ticks.len(), 5);
        assert_eq!(ticks[0], utc("2026-12-01T10:00:00Z"));
    }
}
