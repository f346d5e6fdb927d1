//! A schedule's relative time window, resolved at each fire in the schedule's zone from the
//! fire's local date D (its midnight), as CONTRACT § Schedules gives the kinds:
//! `rolling` `[D−L−N, D−L)`, `previous_day` `[D−L−1, D−L)`, `previous_week` (the last full
//! week, starting on `week_starts`, whose end is ≤ D−L) and `previous_month` (the last full
//! calendar month whose end is ≤ D−L). The bounds are local midnights, as an execution's
//! window is written: local times plus the zone.

use crate::time_window::TimeWindow;
use chrono::{
    DateTime, Datelike, Days, LocalResult, Months, NaiveDate, NaiveDateTime, TimeZone, Utc,
};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// The longest window or lag, in days (AMC keeps about three years of data).
pub const MAX_DAYS: u32 = 1100;

crate::text_enum! {
    /// The first day of a week.
    pub enum WeekStart("week start") {
        Monday = "monday",
        Tuesday = "tuesday",
        Wednesday = "wednesday",
        Thursday = "thursday",
        Friday = "friday",
        Saturday = "saturday",
        Sunday = "sunday",
    }
}

impl WeekStart {
    pub fn weekday(self) -> chrono::Weekday {
        use chrono::Weekday::*;
        match self {
            Self::Monday => Mon,
            Self::Tuesday => Tue,
            Self::Wednesday => Wed,
            Self::Thursday => Thu,
            Self::Friday => Fri,
            Self::Saturday => Sat,
            Self::Sunday => Sun,
        }
    }
}

/// How a fire's window is found from its local date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WindowRule {
    Rolling {
        days: u32,
        #[serde(default)]
        lag_days: u32,
    },
    PreviousDay {
        #[serde(default)]
        lag_days: u32,
    },
    PreviousWeek {
        week_starts: WeekStart,
        #[serde(default)]
        lag_days: u32,
    },
    PreviousMonth {
        #[serde(default)]
        lag_days: u32,
    },
}

/// A window rule's invalid part: the field (below `time_window`) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowRuleError {
    pub field: &'static str,
    pub message: String,
}

impl WindowRule {
    /// Checks the numbers: `days` 1 to [`MAX_DAYS`], `lag_days` 0 to [`MAX_DAYS`].
    pub fn check(&self) -> Result<(), WindowRuleError> {
        let lag = match self {
            Self::Rolling { days, lag_days } => {
                if !(1..=MAX_DAYS).contains(days) {
                    return Err(WindowRuleError {
                        field: "days",
                        message: format!("must be from 1 to {MAX_DAYS}"),
                    });
                }
                *lag_days
            }
            Self::PreviousDay { lag_days }
            | Self::PreviousWeek { lag_days, .. }
            | Self::PreviousMonth { lag_days } => *lag_days,
        };
        if lag > MAX_DAYS {
            return Err(WindowRuleError {
                field: "lag_days",
                message: format!("must be from 0 to {MAX_DAYS}"),
            });
        }
        Ok(())
    }

    /// Reads a rule as a client sends it, naming the bad field (below `time_window`):
    /// `kind` one of `rolling`, `previous_day`, `previous_week`, `previous_month`;
    /// `days` (rolling only, required), `lag_days` (default 0), `week_starts`
    /// (previous_week only, default `monday`); no other fields.
    pub fn from_json(v: &serde_json::Value) -> Result<Self, WindowRuleError> {
        let bad = |field: &'static str, message: String| WindowRuleError { field, message };
        let obj = v.as_object().ok_or_else(|| {
            bad(
                "",
                "must be an object such as {\"kind\":\"previous_day\"}".into(),
            )
        })?;
        let kind = obj.get("kind").and_then(|k| k.as_str()).ok_or_else(|| {
            bad(
                "kind",
                "is required: rolling, previous_day, previous_week or previous_month".into(),
            )
        })?;
        let allowed: &[&str] = match kind {
            "rolling" => &["kind", "days", "lag_days"],
            "previous_day" | "previous_month" => &["kind", "lag_days"],
            "previous_week" => &["kind", "week_starts", "lag_days"],
            other => {
                return Err(bad(
                    "kind",
                    format!(
                        "`{other}` is not a window kind: rolling, previous_day, previous_week or previous_month"
                    ),
                ));
            }
        };
        if let Some(extra) = obj.keys().find(|k| !allowed.contains(&k.as_str())) {
            let field: &'static str = match extra.as_str() {
                "days" => "days",
                "week_starts" => "week_starts",
                _ => "",
            };
            return Err(bad(
                field,
                format!("`{extra}` is not a field of a {kind} window"),
            ));
        }
        let days = |field: &'static str, default: Option<u32>| -> Result<u32, WindowRuleError> {
            match obj.get(field) {
                None | Some(serde_json::Value::Null) => {
                    default.ok_or_else(|| bad(field, "is required".into()))
                }
                Some(n) => n
                    .as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| {
                        bad(
                            field,
                            format!("must be a whole number of days from 0 to {MAX_DAYS}"),
                        )
                    }),
            }
        };
        let lag_days = days("lag_days", Some(0))?;
        let rule = match kind {
            "rolling" => Self::Rolling {
                days: days("days", None)?,
                lag_days,
            },
            "previous_day" => Self::PreviousDay { lag_days },
            "previous_month" => Self::PreviousMonth { lag_days },
            _ => Self::PreviousWeek {
                week_starts: match obj.get("week_starts") {
                    None | Some(serde_json::Value::Null) => WeekStart::Monday,
                    Some(w) => w.as_str().and_then(|w| w.parse().ok()).ok_or_else(|| {
                        bad(
                            "week_starts",
                            "must be a day name such as monday or sunday".into(),
                        )
                    })?,
                },
                lag_days,
            },
        };
        rule.check()?;
        Ok(rule)
    }

    /// The `[start, end)` dates of the window of a fire on local date `d`.
    pub fn dates(&self, d: NaiveDate) -> (NaiveDate, NaiveDate) {
        let lagged = |lag: u32| d - Days::new(u64::from(lag));
        match self {
            Self::Rolling { days, lag_days } => {
                let end = lagged(*lag_days);
                (end - Days::new(u64::from(*days)), end)
            }
            Self::PreviousDay { lag_days } => {
                let end = lagged(*lag_days);
                (end - Days::new(1), end)
            }
            Self::PreviousWeek {
                week_starts,
                lag_days,
            } => {
                let limit = lagged(*lag_days);
                let back = (7 + limit.weekday().num_days_from_monday()
                    - week_starts.weekday().num_days_from_monday())
                    % 7;
                let end = limit - Days::new(u64::from(back));
                (end - Days::new(7), end)
            }
            Self::PreviousMonth { lag_days } => {
                let limit = lagged(*lag_days);
                let end = limit.with_day(1).unwrap_or(limit);
                (end - Months::new(1), end)
            }
        }
    }

    /// The window of a fire at `at` in `tz`: local midnights (or the first instant of the
    /// day, where a zone skips midnight).
    pub fn resolve(&self, at: DateTime<Utc>, tz: Tz) -> TimeWindow {
        let d = at.with_timezone(&tz).date_naive();
        let (start, end) = self.dates(d);
        TimeWindow {
            start: first_instant(start, tz),
            end: first_instant(end, tz),
            time_zone: tz,
        }
    }

    /// A `rolling` rule of the same length as a window that ended `lag_days` before the
    /// day it was asked for (creating a schedule from a past run).
    pub fn rolling_like(window: &TimeWindow, asked_on: NaiveDate) -> Self {
        let days = (window.end.date() - window.start.date())
            .num_days()
            .clamp(1, i64::from(MAX_DAYS));
        let lag = (asked_on - window.end.date())
            .num_days()
            .clamp(0, i64::from(MAX_DAYS));
        Self::Rolling {
            days: days as u32,
            lag_days: lag as u32,
        }
    }
}

/// The instant `day` begins in `tz` (see [`first_instant`]).
pub(crate) fn local_instant(day: NaiveDate, tz: Tz) -> DateTime<Utc> {
    let t = first_instant(day, tz);
    match tz.from_local_datetime(&t) {
        LocalResult::Single(x) | LocalResult::Ambiguous(x, _) => x.with_timezone(&Utc),
        LocalResult::None => t.and_utc(),
    }
}

/// The first local time of `day` that exists in `tz` (midnight, unless the zone skips it).
pub(crate) fn first_instant(day: NaiveDate, tz: Tz) -> NaiveDateTime {
    let midnight = day.and_time(chrono::NaiveTime::MIN);
    for minutes in (0..=180).step_by(15) {
        let t = midnight + chrono::Duration::minutes(minutes);
        if !matches!(tz.from_local_datetime(&t), LocalResult::None) {
            return t;
        }
    }
    midnight
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn dates(rule: &WindowRule, d: &str) -> (String, String) {
        let (a, b) = rule.dates(date(d));
        (a.to_string(), b.to_string())
    }

    fn pair(a: &str, b: &str) -> (String, String) {
        (a.to_owned(), b.to_owned())
    }

    #[test]
    fn rolling_and_previous_day_across_month_and_year_edges() {
        let r = WindowRule::Rolling {
            days: 7,
            lag_days: 14,
        };
        assert_eq!(dates(&r, "2027-01-10"), pair("2026-12-20", "2026-12-27"));
        assert_eq!(dates(&r, "2027-03-01"), pair("2027-02-08", "2027-02-15"));
        let d = WindowRule::PreviousDay { lag_days: 0 };
        assert_eq!(dates(&d, "2027-01-01"), pair("2026-12-31", "2027-01-01"));
        assert_eq!(dates(&d, "2028-03-01"), pair("2028-02-29", "2028-03-01"));
    }

    #[test]
    fn previous_week_ends_on_its_start_day_at_or_before_the_lagged_date() {
        let mon = WindowRule::PreviousWeek {
            week_starts: WeekStart::Monday,
            lag_days: 0,
        };
        // 2027-01-06 is a Wednesday: the last full Monday week ended Monday 2027-01-04.
        assert_eq!(dates(&mon, "2027-01-06"), pair("2026-12-28", "2027-01-04"));
        // On a Monday, the week that just ended.
        assert_eq!(dates(&mon, "2027-01-04"), pair("2026-12-28", "2027-01-04"));
        let sun = WindowRule::PreviousWeek {
            week_starts: WeekStart::Sunday,
            lag_days: 3,
        };
        // 2027-01-06 − 3 = Sunday 2027-01-03.
        assert_eq!(dates(&sun, "2027-01-06"), pair("2026-12-27", "2027-01-03"));
    }

    #[test]
    fn previous_month_is_the_last_full_calendar_month() {
        let m = WindowRule::PreviousMonth { lag_days: 0 };
        assert_eq!(dates(&m, "2027-01-15"), pair("2026-12-01", "2027-01-01"));
        assert_eq!(dates(&m, "2027-03-01"), pair("2027-02-01", "2027-03-01"));
        let lagged = WindowRule::PreviousMonth { lag_days: 14 };
        // 2027-03-10 − 14 = 2027-02-24: the last full month is January.
        assert_eq!(
            dates(&lagged, "2027-03-10"),
            pair("2027-01-01", "2027-02-01")
        );
    }

    #[test]
    fn fires_resolve_in_the_zone_and_across_dst() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let r = WindowRule::PreviousDay { lag_days: 0 };
        // 23:30 UTC on 2027-03-27 is already the 28th in Berlin.
        let at = DateTime::parse_from_rfc3339("2027-03-27T23:30:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let w = r.resolve(at, berlin);
        assert_eq!(
            (w.start_amc(), w.end_amc()),
            ("2027-03-27T00:00:00".into(), "2027-03-28T00:00:00".into())
        );
        // Santiago skips midnight on 2026-09-06: the window starts at its first instant.
        let scl: Tz = "America/Santiago".parse().unwrap();
        let at = DateTime::parse_from_rfc3339("2026-09-07T15:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let w = r.resolve(at, scl);
        assert_eq!(w.start_amc(), "2026-09-06T01:00:00");
        assert_eq!(w.end_amc(), "2026-09-07T00:00:00");
    }

    #[test]
    fn rules_read_the_contract_shapes_and_are_checked() {
        let r: WindowRule =
            serde_json::from_str(r#"{"kind":"rolling","days":7,"lag_days":14}"#).unwrap();
        assert_eq!(
            r,
            WindowRule::Rolling {
                days: 7,
                lag_days: 14
            }
        );
        let r: WindowRule =
            serde_json::from_str(r#"{"kind":"previous_week","week_starts":"sunday"}"#).unwrap();
        assert_eq!(
            r,
            WindowRule::PreviousWeek {
                week_starts: WeekStart::Sunday,
                lag_days: 0
            }
        );
        assert!(serde_json::from_str::<WindowRule>(r#"{"kind":"hourly"}"#).is_err());
        assert_eq!(
            WindowRule::Rolling {
                days: 0,
                lag_days: 0
            }
            .check()
            .unwrap_err()
            .field,
            "days"
        );
        assert_eq!(
            WindowRule::PreviousDay { lag_days: 5000 }
                .check()
                .unwrap_err()
                .field,
            "lag_days"
        );
    }

    #[test]
    fn client_rules_name_their_bad_field() {
        let read = |s: &str| WindowRule::from_json(&serde_json::from_str(s).unwrap());
        assert_eq!(
            read(r#"{"kind":"previous_week"}"#).unwrap(),
            WindowRule::PreviousWeek {
                week_starts: WeekStart::Monday,
                lag_days: 0
            }
        );
        for (body, field) in [
            (r#"{"kind":"hourly"}"#, "kind"),
            (r#"{"days":3}"#, "kind"),
            (r#"{"kind":"rolling"}"#, "days"),
            (r#"{"kind":"rolling","days":-1}"#, "days"),
            (r#"{"kind":"rolling","days":0}"#, "days"),
            (r#"{"kind":"previous_day","lag_days":"x"}"#, "lag_days"),
            (r#"{"kind":"previous_day","days":3}"#, "days"),
            (
                r#"{"kind":"previous_week","week_starts":"funday"}"#,
                "week_starts",
            ),
            (r#"[1]"#, ""),
        ] {
            assert_eq!(read(body).unwrap_err().field, field, "{body}");
        }
    }
}
