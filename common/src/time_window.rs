//! A checked AMC time window: local start and end (AMC's `yyyy-MM-ddTHH:mm:ss`, no offset)
//! read in an IANA time zone, with `start < end`, both within [`EARLIEST`, `LATEST`] and
//! both instants that exist in the zone.

use chrono::{LocalResult, NaiveDate, NaiveDateTime, TimeZone, Timelike};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// AMC's local-time format.
pub const AMC_FORMAT: &str = "%Y-%m-%dT%H:%M:%S";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeWindow {
    pub start: NaiveDateTime,
    pub end: NaiveDateTime,
    pub time_zone: Tz,
}

/// Which field of a time window is wrong, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct TimeWindowError {
    pub field: &'static str,
    pub message: String,
}

/// The earliest local time a window may start at. AMC documents no bound (it keeps about
/// three years of data); this one keeps every value inside what each layer stores.
pub const EARLIEST: NaiveDateTime = match NaiveDate::from_ymd_opt(2000, 1, 1) {
    Some(d) => d.and_hms_opt(0, 0, 0).expect("midnight"),
    None => panic!("a valid date"),
};
/// The latest local time a window may end at (see [`EARLIEST`]).
pub const LATEST: NaiveDateTime = match NaiveDate::from_ymd_opt(2100, 1, 1) {
    Some(d) => d.and_hms_opt(0, 0, 0).expect("midnight"),
    None => panic!("a valid date"),
};

fn parse_local(field: &'static str, s: &str) -> Result<NaiveDateTime, TimeWindowError> {
    let fail = |message: String| TimeWindowError { field, message };
    let trimmed = s.strip_suffix('Z').unwrap_or(s);
    let t = NaiveDateTime::parse_from_str(trimmed, AMC_FORMAT).map_err(|_| {
        fail(format!(
            "`{s}` is not a local time like 2026-01-01T00:00:00"
        ))
    })?;
    if t.nanosecond() >= 1_000_000_000 {
        return Err(fail(format!(
            "`{s}` is a leap second, which AMC does not take; use 23:59:59 or the next minute"
        )));
    }
    if !(EARLIEST..=LATEST).contains(&t) {
        return Err(fail(format!(
            "`{s}` is outside {} to {}",
            EARLIEST.format(AMC_FORMAT),
            LATEST.format(AMC_FORMAT)
        )));
    }
    Ok(t)
}

/// Refuses a local time the zone's clocks skip (the spring-forward gap).
fn exists_in(field: &'static str, t: NaiveDateTime, zone: Tz) -> Result<(), TimeWindowError> {
    match zone.from_local_datetime(&t) {
        LocalResult::None => Err(TimeWindowError {
            field,
            message: format!(
                "{} does not exist in {} (its clocks skip that time)",
                t.format(AMC_FORMAT),
                zone.name()
            ),
        }),
        _ => Ok(()),
    }
}

impl TimeWindow {
    /// Parses the API's `time_window` fields. Field names in errors are the API's.
    pub fn parse(start: &str, end: &str, time_zone: Option<&str>) -> Result<Self, TimeWindowError> {
        let start = parse_local("time_window.start", start)?;
        let end = parse_local("time_window.end", end)?;
        let zone = time_zone.unwrap_or("UTC");
        let time_zone: Tz = zone.parse().map_err(|_| TimeWindowError {
            field: "time_window.time_zone",
            message: format!("`{zone}` is not an IANA time zone name"),
        })?;
        if start >= end {
            return Err(TimeWindowError {
                field: "time_window.end",
                message: "must be after time_window.start".into(),
            });
        }
        exists_in("time_window.start", start, time_zone)?;
        exists_in("time_window.end", end, time_zone)?;
        Ok(Self {
            start,
            end,
            time_zone,
        })
    }

    pub fn start_amc(&self) -> String {
        self.start.format(AMC_FORMAT).to_string()
    }

    pub fn end_amc(&self) -> String {
        self.end.format(AMC_FORMAT).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats_amc_local_times() {
        let w = TimeWindow::parse("2026-01-01T00:00:00", "2026-01-08T00:00:00", None).unwrap();
        assert_eq!(w.time_zone, chrono_tz::UTC);
        assert_eq!(w.start_amc(), "2026-01-01T00:00:00");
        assert_eq!(w.end_amc(), "2026-01-08T00:00:00");
    }

    #[test]
    fn rejects_bad_fields_by_name() {
        assert_eq!(
            TimeWindow::parse("2026-01-01", "2026-01-08T00:00:00", None)
                .unwrap_err()
                .field,
            "time_window.start"
        );
        assert_eq!(
            TimeWindow::parse("2026-01-08T00:00:00", "2026-01-01T00:00:00", None)
                .unwrap_err()
                .field,
            "time_window.end"
        );
        assert_eq!(
            TimeWindow::parse(
                "2026-01-01T00:00:00",
                "2026-01-08T00:00:00",
                Some("Mars/Olympus")
            )
            .unwrap_err()
            .field,
            "time_window.time_zone"
        );
        assert!(
            TimeWindow::parse(
                "2026-01-01T00:00:00Z",
                "2026-01-08T00:00:00",
                Some("America/New_York")
            )
            .is_ok()
        );
    }

    fn field_of(start: &str, end: &str, zone: &str) -> &'static str {
        TimeWindow::parse(start, end, Some(zone)).unwrap_err().field
    }

    #[test]
    fn leap_seconds_and_out_of_range_years_are_refused() {
        let end = "2026-07-08T00:00:00";
        assert_eq!(
            field_of("2026-06-30T23:59:60", end, "UTC"),
            "time_window.start"
        );
        for start in [
            "-5000-01-01T00:00:00",
            "0000-01-01T00:00:00",
            "+10000-01-01T00:00:00",
            "1999-12-31T23:59:59",
        ] {
            assert_eq!(field_of(start, end, "UTC"), "time_window.start", "{start}");
        }
        assert_eq!(
            field_of("2026-01-01T00:00:00", "2100-01-01T00:00:01", "UTC"),
            "time_window.end"
        );
        assert!(TimeWindow::parse("2000-01-01T00:00:00", "2100-01-01T00:00:00", None).is_ok());
    }

    #[test]
    fn local_times_the_clocks_skip_are_refused() {
        let ny = "America/New_York";
        assert_eq!(
            field_of("2026-03-08T02:30:00", "2026-03-09T00:00:00", ny),
            "time_window.start"
        );
        assert_eq!(
            field_of("2026-03-01T00:00:00", "2026-03-08T02:00:00", ny),
            "time_window.end"
        );
        // The same wall time exists in UTC, and the fall-back hour happens twice (taken).
        assert!(TimeWindow::parse("2026-03-08T02:30:00", "2026-03-09T00:00:00", None).is_ok());
        assert!(TimeWindow::parse("2026-11-01T01:30:00", "2026-11-02T00:00:00", Some(ny)).is_ok());
    }
}
