//! The time window of a run that names none: RecomAMP's default, the 30 days ending 14
//! days ago (AMC's data lag), in the instance's zone, from midnight to midnight.

use crate::ids::{UserId, WorkflowId};
use crate::repo::{RepoError, stmt};
use crate::schedule::window::first_instant;
use crate::time_window::TimeWindow;
use chrono::{DateTime, Days, Utc};
use chrono_tz::Tz;
use sea_orm::ConnectionTrait;

/// Days in the default window.
pub const DEFAULT_WINDOW_DAYS: u64 = 30;
/// How many days before today the default window ends.
pub const DEFAULT_WINDOW_LAG_DAYS: u64 = 14;

/// `[D − 44, D − 14)` for today's local date D in `tz`, as local midnights.
pub fn default_window(now: DateTime<Utc>, tz: Tz) -> TimeWindow {
    let today = now.with_timezone(&tz).date_naive();
    let end = today - Days::new(DEFAULT_WINDOW_LAG_DAYS);
    let start = end - Days::new(DEFAULT_WINDOW_DAYS);
    TimeWindow {
        start: first_instant(start, tz),
        end: first_instant(end, tz),
        time_zone: tz,
    }
}

/// The zone of the instance one of the user's workflows runs on.
pub async fn instance_zone(
    db: &impl ConnectionTrait,
    user: UserId,
    id: WorkflowId,
) -> Result<Tz, RepoError> {
    let row = db
        .query_one_raw(stmt(
            "SELECT i.time_zone FROM workflows w JOIN amc_instances i ON i.id = w.instance_id \
             WHERE w.id = $1 AND w.user_id = $2 AND w.deleted_at IS NULL",
            [id.into(), user.into()],
        ))
        .await?
        .ok_or(RepoError::NotFound)?;
    let zone: String = row.try_get("", "time_zone")?;
    Ok(zone.parse().unwrap_or(chrono_tz::UTC))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn the_default_is_the_30_days_ending_14_days_ago_in_the_zone() {
        // 2026-03-20 02:00 UTC is still the 19th in Los Angeles.
        let now = Utc.with_ymd_and_hms(2026, 3, 20, 2, 0, 0).unwrap();
        let w = default_window(now, chrono_tz::America::Los_Angeles);
        assert_eq!(w.start_amc(), "2026-02-03T00:00:00");
        assert_eq!(w.end_amc(), "2026-03-05T00:00:00");
        let w = default_window(now, chrono_tz::UTC);
        assert_eq!(w.end_amc(), "2026-03-06T00:00:00");
        assert_eq!(w.start_amc(), "2026-02-04T00:00:00");
    }
}
