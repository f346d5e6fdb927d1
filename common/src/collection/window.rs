//! A collection's windows: half-open `[start, end)` local dates in the collection's zone
//! that tile its range with no gap and no overlap (AMC refuses overlapping runs of one
//! query), one per week (starting on any day), day or calendar month; the default ranges;
//! and the checks of a range, each naming the field it blames.

use crate::schedule::WeekStart;
use chrono::{Datelike, Days, Months, NaiveDate};

crate::text_enum! {
    /// How a collection's range is cut into windows.
    pub enum Granularity("granularity") {
        /// Weeks starting on `week_starts`.
        Week = "week",
        Day = "day",
        /// Calendar months.
        Month = "month",
        /// A schedule's fires in the range (`POST /schedules/{id}/backfill`), each window
        /// resolved as the fire would have been.
        Schedule = "schedule",
    }
}

crate::text_enum! {
    /// The granularities a client asks a collection for (a schedule's fires come from a
    /// backfill).
    pub enum WindowGranularity("granularity") {
        Week = "week",
        Day = "day",
        Month = "month",
    }
}

impl From<WindowGranularity> for Granularity {
    fn from(g: WindowGranularity) -> Self {
        match g {
            WindowGranularity::Week => Self::Week,
            WindowGranularity::Day => Self::Day,
            WindowGranularity::Month => Self::Month,
        }
    }
}

/// AMC's data lag as RecomAMP uses it: default ranges end at least this many days ago.
pub const DATA_LAG_DAYS: u64 = 14;

/// One window: local dates, `end` exclusive.
pub type Dates = (NaiveDate, NaiveDate);

/// What a range may be, from the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `AMP_COLLECTION_MAX_WINDOWS`.
    pub max_windows: usize,
    /// `AMP_COLLECTION_MAX_LOOKBACK`, in whole days.
    pub max_lookback_days: u64,
}

/// A range's invalid part: the field (`start` or `end`) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct RangeError {
    pub field: &'static str,
    pub message: String,
}

impl RangeError {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

fn bad(field: &'static str, message: impl Into<String>) -> RangeError {
    RangeError::new(field, message)
}

/// The last day on or before `d` that is a `ws` day.
fn week_start_on_or_before(d: NaiveDate, ws: WeekStart) -> NaiveDate {
    let back = (7 + d.weekday().num_days_from_monday() - ws.weekday().num_days_from_monday()) % 7;
    d - Days::new(u64::from(back))
}

/// The default range ending at least [`DATA_LAG_DAYS`] before `today`: 52 weeks ending on
/// the last `week_starts` day, 30 days, or 12 calendar months.
pub fn default_range(g: Granularity, ws: WeekStart, today: NaiveDate) -> Dates {
    let limit = today - Days::new(DATA_LAG_DAYS);
    match g {
        Granularity::Week | Granularity::Schedule => {
            let end = week_start_on_or_before(limit, ws);
            (end - Days::new(52 * 7), end)
        }
        Granularity::Day => (limit - Days::new(30), limit),
        Granularity::Month => {
            let end = limit.with_day(1).unwrap_or(limit);
            (end - Months::new(12), end)
        }
    }
}

/// The first window boundary after `d`.
fn step(d: NaiveDate, g: Granularity) -> NaiveDate {
    match g {
        Granularity::Day => d + Days::new(1),
        Granularity::Month => d + Months::new(1),
        Granularity::Week | Granularity::Schedule => d + Days::new(7),
    }
}

/// Whether `d` is a window boundary, and if not, what a boundary is.
fn boundary(d: NaiveDate, g: Granularity, ws: WeekStart) -> Result<(), String> {
    match g {
        Granularity::Day => Ok(()),
        Granularity::Month if d.day() == 1 => Ok(()),
        Granularity::Month => Err(format!("{d} is not the first day of a month")),
        _ if d.weekday() == ws.weekday() => Ok(()),
        _ => Err(format!(
            "{d} is a {}, and weeks start on {ws} (week_starts)",
            d.weekday()
        )),
    }
}

/// Cuts `[start, end)` into windows after checking it against `today` (in the
/// collection's zone) and `limits`: `end` after `start` and not after today (the last
/// window must have ended), both on window boundaries, at most `max_windows` windows, and
/// `start` no further back than `max_lookback_days`.
pub fn windows(
    (start, end): Dates,
    g: Granularity,
    ws: WeekStart,
    today: NaiveDate,
    limits: Limits,
) -> Result<Vec<Dates>, RangeError> {
    if end <= start {
        return Err(bad("end", format!("{end} must be after start ({start})")));
    }
    if end > today {
        return Err(bad(
            "end",
            format!("{end} is in the future: the last window must have ended by today ({today})"),
        ));
    }
    boundary(start, g, ws).map_err(|m| bad("start", m))?;
    boundary(end, g, ws).map_err(|m| bad("end", m))?;
    let earliest = today - Days::new(limits.max_lookback_days);
    if start < earliest {
        return Err(bad(
            "start",
            format!(
                "{start} is more than {} days back (AMP_COLLECTION_MAX_LOOKBACK); the earliest start is {earliest}",
                limits.max_lookback_days
            ),
        ));
    }
    let mut out = Vec::new();
    let mut at = start;
    while at < end {
        if out.len() == limits.max_windows {
            return Err(bad(
                "start",
                format!(
                    "the range has more than {} windows (AMP_COLLECTION_MAX_WINDOWS)",
                    limits.max_windows
                ),
            ));
        }
        let next = step(at, g);
        out.push((at, next));
        at = next;
    }
    Ok(out)
}

/// Checks windows given one by one (a schedule's fires): none may overlap another, since
/// AMC refuses overlapping runs of one query. They come sorted by start.
pub fn check_disjoint(w: &[Dates]) -> Result<(), RangeError> {
    for pair in w.windows(2) {
        if pair[1].0 < pair[0].1 {
            return Err(bad(
                "start",
                format!(
                    "the schedule's windows overlap ({} to {} and {} to {}): its window is longer than its period, and AMC refuses overlapping runs of one query",
                    pair[0].0, pair[0].1, pair[1].0, pair[1].1
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    const LIMITS: Limits = Limits {
        max_windows: 520,
        max_lookback_days: 1100,
    };

    fn tiles(w: &[Dates], start: NaiveDate, end: NaiveDate) {
        assert_eq!(w.first().unwrap().0, start);
        assert_eq!(w.last().unwrap().1, end);
        for pair in w.windows(2) {
            assert_eq!(pair[0].1, pair[1].0, "no gap, no overlap");
        }
        assert!(w.iter().all(|(a, b)| a < b));
    }

    #[test]
    fn default_ranges_end_at_least_fourteen_days_ago() {
        let today = d("2026-12-07"); // a Monday
        let (s, e) = default_range(Granularity::Week, WeekStart::Monday, today);
        assert_eq!(e, d("2026-11-23"), "the last Monday at least 14 days ago");
        assert_eq!(s, d("2025-11-24"));
        let w = windows((s, e), Granularity::Week, WeekStart::Monday, today, LIMITS).unwrap();
        assert_eq!(w.len(), 52);
        tiles(&w, s, e);
        let (s, e) = default_range(Granularity::Week, WeekStart::Sunday, today);
        assert_eq!(e, d("2026-11-22"));
        assert_eq!((e - s).num_days(), 364);
        let (s, e) = default_range(Granularity::Day, WeekStart::Monday, today);
        assert_eq!((s, e), (d("2026-10-24"), d("2026-11-23")));
        let (s, e) = default_range(Granularity::Month, WeekStart::Monday, today);
        assert_eq!((s, e), (d("2025-11-01"), d("2026-11-01")));
        let w = windows((s, e), Granularity::Month, WeekStart::Monday, today, LIMITS).unwrap();
        assert_eq!(w.len(), 12);
        tiles(&w, s, e);
    }

    #[test]
    fn months_tile_across_year_ends_and_short_months() {
        let w = windows(
            (d("2023-11-01"), d("2024-04-01")),
            Granularity::Month,
            WeekStart::Monday,
            d("2026-01-01"),
            LIMITS,
        )
        .unwrap();
        assert_eq!(
            w,
            [
                (d("2023-11-01"), d("2023-12-01")),
                (d("2023-12-01"), d("2024-01-01")),
                (d("2024-01-01"), d("2024-02-01")),
                (d("2024-02-01"), d("2024-03-01")),
                (d("2024-03-01"), d("2024-04-01")),
            ]
        );
    }

    #[test]
    fn days_and_weeks_on_any_start_day() {
        let w = windows(
            (d("2026-02-26"), d("2026-03-02")),
            Granularity::Day,
            WeekStart::Monday,
            d("2026-12-01"),
            LIMITS,
        )
        .unwrap();
        assert_eq!(w.len(), 4, "28 Feb then 1 Mar in a non-leap year");
        let w = windows(
            (d("2026-01-04"), d("2026-02-01")),
            Granularity::Week,
            WeekStart::Sunday,
            d("2026-12-01"),
            LIMITS,
        )
        .unwrap();
        assert_eq!(w.len(), 4);
        tiles(&w, d("2026-01-04"), d("2026-02-01"));
    }

    #[test]
    fn bad_ranges_name_their_field() {
        let today = d("2026-12-07");
        let field = |r: Dates, g| {
            windows(r, g, WeekStart::Monday, today, LIMITS)
                .unwrap_err()
                .field
        };
        assert_eq!(
            field((d("2026-02-02"), d("2026-01-05")), Granularity::Week),
            "end"
        );
        assert_eq!(
            field((d("2026-01-05"), d("2026-01-05")), Granularity::Week),
            "end"
        );
        assert_eq!(
            field((d("2026-11-30"), d("2026-12-14")), Granularity::Week),
            "end",
            "ends in the future"
        );
        assert_eq!(
            field((d("2026-01-06"), d("2026-02-02")), Granularity::Week),
            "start",
            "a Tuesday"
        );
        assert_eq!(
            field((d("2026-01-05"), d("2026-02-03")), Granularity::Week),
            "end"
        );
        assert_eq!(
            field((d("2026-01-02"), d("2026-02-01")), Granularity::Month),
            "start"
        );
        assert_eq!(
            field((d("2023-01-02"), d("2023-02-06")), Granularity::Week),
            "start",
            "more than 1100 days back"
        );
        let small = Limits {
            max_windows: 10,
            ..LIMITS
        };
        let e = windows(
            (d("2026-01-01"), d("2026-01-12")),
            Granularity::Day,
            WeekStart::Monday,
            today,
            small,
        )
        .unwrap_err();
        assert_eq!(e.field, "start");
        assert!(
            windows(
                (d("2026-01-01"), d("2026-01-11")),
                Granularity::Day,
                WeekStart::Monday,
                today,
                small
            )
            .is_ok()
        );
    }

    #[test]
    fn overlapping_fires_are_refused() {
        let ok = [
            (d("2026-01-01"), d("2026-01-02")),
            (d("2026-01-02"), d("2026-01-03")),
        ];
        assert!(check_disjoint(&ok).is_ok());
        let overlap = [
            (d("2026-01-01"), d("2026-01-08")),
            (d("2026-01-02"), d("2026-01-09")),
        ];
        assert_eq!(check_disjoint(&overlap).unwrap_err().field, "start");
    }
}
