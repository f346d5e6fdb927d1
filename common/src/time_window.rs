//! A checked AMC time window: local start and end (AMC's `yyyy-MM-ddTHH:mm:ss`, no offset)
//! read in an IANA time zone, with `start < end`.

use chrono::NaiveDateTime;
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

fn parse_local(field: &'static str, s: &str) -> Result<NaiveDateTime, TimeWindowError> {
    let trimmed = s.strip_suffix('Z').unwrap_or(s);
    NaiveDateTime::parse_from_str(trimmed, AMC_FORMAT).map_err(|_| TimeWindowError {
        field,
        message: format!("`{s}` is not a local time like 2026-01-01T00:00:00"),
    })
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
}
