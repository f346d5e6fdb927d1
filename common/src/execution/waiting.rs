//! Why a queued run is still waiting, shown on `GET /executions/{id}`: a full daily
//! quota (with the instant it resets: the next midnight in the instance's time zone), a
//! full instance, a full account, or older runs ahead of it.

use super::{ExecutionRow, Status};
use chrono::{DateTime, Duration, LocalResult, TimeZone, Utc};
use chrono_tz::Tz;
use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement};

crate::text_enum! {
    /// Why a queued run waits.
    pub enum WaitingReason("waiting reason") {
        /// The instance's daily execution quota is used up until `quota_wait_until`.
        DailyQuota = "daily_quota",
        /// The instance runs as many executions as its cap allows.
        InstanceCap = "instance_cap",
        /// The account runs as many executions as its cap allows (across its instances).
        AccountCap = "account_cap",
        /// A slot is free: older queued runs go first, or admission is about to happen.
        QueuedBehindOlderRuns = "queued_behind_older_runs",
        /// Triggered for a later instant (`next_check_at`): not admitted before it.
        NotBefore = "not_before",
        /// A collection window: the instance has free slots, but collection windows hold
        /// all but its `collection_reserve`, which only other runs take.
        CollectionReserve = "collection_reserve",
        /// A collection window whose collection is paused.
        CollectionPaused = "collection_paused",
    }
}

/// The first instant of the day after `now`'s local day in `tz`. A midnight skipped by
/// a daylight-saving change resolves to the first instant that exists after it; one that
/// happens twice resolves to the earlier.
pub fn next_local_midnight(now: DateTime<Utc>, tz: Tz) -> DateTime<Utc> {
    let local_day = now.with_timezone(&tz).date_naive();
    let next = local_day.succ_opt().unwrap_or(local_day);
    let midnight = next.and_time(chrono::NaiveTime::MIN);
    for minutes in (0..=180).step_by(15) {
        match tz.from_local_datetime(&(midnight + Duration::minutes(minutes))) {
            LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => return t.with_timezone(&Utc),
            LocalResult::None => continue,
        }
    }
    // No zone skips more than three hours; fall back to a day after now.
    now + Duration::days(1)
}

/// Fills `waiting_reason` and `quota_wait_until` of a queued row (others stay `None`).
pub async fn with_waiting<C: ConnectionTrait>(
    conn: &C,
    mut row: ExecutionRow,
) -> Result<ExecutionRow, DbErr> {
    if row.status != Status::Queued {
        return Ok(row);
    }
    if row.next_check_at.is_some_and(|t| t > Utc::now()) {
        row.waiting_reason = Some(WaitingReason::NotBefore);
        return Ok(row);
    }
    let Some(r) = conn
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            format!("SELECT i.max_concurrent_executions AS cap, i.daily_execution_quota AS quota, i.time_zone, \
               a.max_concurrent_executions AS account_cap, {reserve} AS reserve, \
               (SELECT count(*) FROM executions e WHERE e.instance_id = i.id AND e.status IN ('submitting', 'running') \
                  AND e.collection_id IS NOT NULL) AS active_windows, \
               (SELECT c.status FROM collections c WHERE c.id = $2) AS collection_status, \
               (SELECT count(*) FROM executions e WHERE e.instance_id = i.id AND e.status IN ('submitting', 'running')) AS active_runs, \
               {used_today} AS used_today, \
               (SELECT count(*) FROM executions e JOIN amc_instances j ON j.id = e.instance_id \
                  WHERE j.account_id = i.account_id AND e.status IN ('submitting', 'running')) AS account_active \
             FROM amc_instances i JOIN amc_accounts a ON a.id = i.account_id WHERE i.id = $1",
                reserve = super::admission::RESERVE_SQL,
                used_today = super::admission::USED_TODAY_SQL),
            [row.instance_id.into(), row.collection_id.into()],
        ))
        .await?
    else {
        return Ok(row);
    };
    let cap: i32 = r.try_get("", "cap")?;
    let quota: Option<i32> = r.try_get("", "quota")?;
    let zone: String = r.try_get("", "time_zone")?;
    let account_cap: i32 = r.try_get("", "account_cap")?;
    let active: i64 = r.try_get("", "active_runs")?;
    let used: i64 = r.try_get("", "used_today")?;
    let account_active: i64 = r.try_get("", "account_active")?;
    let reserve: i32 = r.try_get("", "reserve")?;
    let active_windows: i64 = r.try_get("", "active_windows")?;
    let collection: Option<crate::collection::CollectionStatus> =
        r.try_get("", "collection_status")?;
    let reason = if collection == Some(crate::collection::CollectionStatus::Paused) {
        WaitingReason::CollectionPaused
    } else if quota.is_some_and(|q| used >= i64::from(q)) {
        let tz: Tz = zone.parse().unwrap_or(Tz::UTC);
        row.quota_wait_until = Some(next_local_midnight(Utc::now(), tz));
        WaitingReason::DailyQuota
    } else if active >= i64::from(cap) {
        WaitingReason::InstanceCap
    } else if account_active >= i64::from(account_cap) {
        WaitingReason::AccountCap
    } else if collection.is_some() && active_windows >= i64::from(cap - reserve) {
        WaitingReason::CollectionReserve
    } else {
        WaitingReason::QueuedBehindOlderRuns
    };
    row.waiting_reason = Some(reason);
    Ok(row)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn utc_resets_at_the_next_utc_midnight() {
        assert_eq!(
            next_local_midnight(utc("2026-03-10T23:59:59Z"), Tz::UTC),
            utc("2026-03-11T00:00:00Z")
        );
        assert_eq!(
            next_local_midnight(utc("2026-03-10T00:00:00Z"), Tz::UTC),
            utc("2026-03-11T00:00:00Z")
        );
    }

    #[test]
    fn a_zone_west_of_utc_resets_at_its_own_midnight() {
        let ny: Tz = "America/New_York".parse().unwrap();
        // 03:00 UTC on the 11th is still the 10th in New York (23:00 EDT).
        assert_eq!(
            next_local_midnight(utc("2026-06-11T03:00:00Z"), ny),
            utc("2026-06-11T04:00:00Z")
        );
        // 05:00 UTC is already the 11th there: the reset is the 12th at 04:00 UTC.
        assert_eq!(
            next_local_midnight(utc("2026-06-11T05:00:00Z"), ny),
            utc("2026-06-12T04:00:00Z")
        );
    }

    #[test]
    fn a_zone_east_of_utc_and_a_dst_change_are_handled() {
        let tokyo: Tz = "Asia/Tokyo".parse().unwrap();
        assert_eq!(
            next_local_midnight(utc("2026-01-01T14:59:00Z"), tokyo),
            utc("2026-01-01T15:00:00Z")
        );
        // New York springs forward on 2026-03-08 (at 02:00, not midnight): the day after
        // 2026-03-07 starts at 05:00 UTC (EST), the one after that at 04:00 UTC (EDT).
        let ny: Tz = "America/New_York".parse().unwrap();
        assert_eq!(
            next_local_midnight(utc("2026-03-07T12:00:00Z"), ny),
            utc("2026-03-08T05:00:00Z")
        );
        assert_eq!(
            next_local_midnight(utc("2026-03-08T12:00:00Z"), ny),
            utc("2026-03-09T04:00:00Z")
        );
        // Santiago skips local midnight when it springs forward (2026-09-06 00:00 → 01:00).
        let scl: Tz = "America/Santiago".parse().unwrap();
        assert_eq!(
            next_local_midnight(utc("2026-09-05T12:00:00Z"), scl),
            utc("2026-09-06T04:00:00Z")
        );
    }
}
