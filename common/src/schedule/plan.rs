//! What a due schedule does at a fire pass, decided without I/O: which ticks came due, which
//! of them were missed (no scheduler replica was alive when they came due), which the
//! catch-up policy fires anyway, and what the overlap policy makes of each fire.

use super::policy::{CatchUp, CatchUpPolicy, Overlap, RunOutcome};
use super::rule::CronRule;
use crate::ids::ExecutionId;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;

/// Ticks one pass looks at per schedule at most (the rest wait for the next pass).
pub const MAX_TICKS_PER_PASS: usize = 100_000;
/// Missed ticks recorded one by one; past these, one entry carries the count.
pub const MISSED_ONE_BY_ONE: usize = 100;

/// When scheduler replicas were alive: `[from, to]` spans from `schedulers`.
#[derive(Debug, Clone, Default)]
pub struct Lives(pub Vec<(DateTime<Utc>, DateTime<Utc>)>);

impl Lives {
    /// Whether some replica was alive at `t` (then it fired `t`, late at worst).
    pub fn covers(&self, t: DateTime<Utc>) -> bool {
        self.0.iter().any(|(from, to)| *from <= t && t <= *to)
    }
}

/// A schedule's state as a pass sees it.
#[derive(Debug, Clone)]
pub struct State<'a> {
    pub rule: &'a CronRule,
    pub tz: Tz,
    pub overlap: Overlap,
    pub catch_up: CatchUp,
    pub next_run_at: Option<DateTime<Utc>>,
    pub last_run_at: Option<DateTime<Utc>>,
    pub buffered_for: Option<DateTime<Utc>>,
    /// Ticks of the rule before an edit, due but not yet fired when it changed.
    pub carried: &'a [DateTime<Utc>],
    /// Its runs that have not ended.
    pub active: &'a [ExecutionId],
}

/// One entry of the run history a pass writes (besides the runs it starts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub scheduled_for: DateTime<Utc>,
    pub outcome: RunOutcome,
    pub missed_count: i64,
}

/// What a pass does for one schedule.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// Ticks to start a run for, oldest first, with whether each started on time (for the
    /// lag metric) rather than by catch-up or from the buffer.
    pub starts: Vec<(DateTime<Utc>, bool)>,
    /// History entries other than `started`.
    pub entries: Vec<Entry>,
    /// Runs to cancel (`cancel_other`).
    pub cancel: Vec<ExecutionId>,
    pub next_run_at: Option<DateTime<Utc>>,
    pub last_run_at: Option<DateTime<Utc>>,
    pub buffered_for: Option<DateTime<Utc>>,
    /// Ticks recorded missed.
    pub missed: i64,
}

/// Decides a schedule's pass at `now`.
pub fn plan(s: &State<'_>, now: DateTime<Utc>, lives: &Lives) -> Plan {
    let mut p = Plan {
        last_run_at: s.last_run_at,
        buffered_for: s.buffered_for,
        ..Plan::default()
    };
    let rule_ticks = match s.next_run_at {
        Some(first) if first <= now => s.rule.ticks_between(first, now, s.tz, MAX_TICKS_PER_PASS),
        _ => Vec::new(),
    };
    let backlog = rule_ticks.len() == MAX_TICKS_PER_PASS;
    let mut ticks: Vec<DateTime<Utc>> = s.carried.iter().copied().filter(|t| *t <= now).collect();
    ticks.extend(&rule_ticks);
    ticks.sort();
    ticks.dedup();
    let (on_time, missed): (Vec<_>, Vec<_>) = ticks.iter().partition(|t| lives.covers(**t));
    // What the catch-up policy fires of the missed ticks; the rest are recorded missed.
    let window = chrono::Duration::from_std(s.catch_up.window).unwrap_or_default();
    let recent = |t: &DateTime<Utc>| now - *t <= window;
    let caught: Vec<DateTime<Utc>> = match s.catch_up.policy {
        CatchUpPolicy::None => Vec::new(),
        CatchUpPolicy::Latest => missed
            .last()
            .filter(|t| recent(t))
            .into_iter()
            .copied()
            .collect(),
        CatchUpPolicy::All => missed.iter().filter(|t| recent(t)).copied().collect(),
    };
    let dropped: Vec<DateTime<Utc>> = missed
        .iter()
        .filter(|t| !caught.contains(t))
        .copied()
        .collect();
    record_missed(&mut p, &dropped);
    let mut fires: Vec<(DateTime<Utc>, bool)> = caught
        .into_iter()
        .map(|t| (t, false))
        .chain(on_time.into_iter().map(|t| (t, true)))
        .collect();
    fires.sort();
    let mut active = !s.active.is_empty();
    // A buffered tick starts once the run it waited for has ended.
    if let (Some(b), false) = (p.buffered_for, active) {
        p.starts.push((b, false));
        p.buffered_for = None;
        active = true;
    }
    let last_fire = fires.len().saturating_sub(1);
    for (i, (t, on_time)) in fires.iter().copied().enumerate() {
        let skipped = Entry {
            scheduled_for: t,
            outcome: RunOutcome::SkippedOverlap,
            missed_count: 1,
        };
        match (s.overlap, active) {
            (Overlap::AllowAll, _) | (_, false) => {
                p.starts.push((t, on_time));
                active = true;
            }
            (Overlap::Skip, true) => p.entries.push(skipped),
            (Overlap::BufferOne, true) => {
                if p.buffered_for.is_none() {
                    p.buffered_for = Some(t);
                    p.entries.push(Entry {
                        outcome: RunOutcome::Buffered,
                        ..skipped
                    });
                } else {
                    p.entries.push(skipped);
                }
            }
            (Overlap::CancelOther, true) => {
                // Of several fires in one pass, the last starts; starting the others only
                // to cancel them at once would cost AMC for nothing.
                if i < last_fire {
                    p.entries.push(skipped);
                    continue;
                }
                if p.cancel.is_empty() {
                    p.cancel = s.active.to_vec();
                }
                p.starts.push((t, on_time));
            }
        }
    }
    if let Some(last) = ticks.last() {
        p.last_run_at = Some(p.last_run_at.map_or(*last, |l| l.max(*last)));
    }
    let after = rule_ticks.last().map_or(now, |l| (*l).max(now));
    p.next_run_at = if backlog {
        // Not done with the backlog: carry on from the last tick looked at.
        rule_ticks.last().and_then(|l| s.rule.next_after(*l, s.tz))
    } else {
        match s.next_run_at {
            Some(next) if next > now => Some(next),
            _ => s.rule.next_after(after, s.tz),
        }
    };
    p
}

/// Records dropped ticks `missed`: one entry each up to [`MISSED_ONE_BY_ONE`], then one
/// entry at the last of them carrying the rest.
fn record_missed(p: &mut Plan, dropped: &[DateTime<Utc>]) {
    p.missed += dropped.len() as i64;
    for t in dropped.iter().take(MISSED_ONE_BY_ONE) {
        p.entries.push(Entry {
            scheduled_for: *t,
            outcome: RunOutcome::Missed,
            missed_count: 1,
        });
    }
    if dropped.len() > MISSED_ONE_BY_ONE
        && let Some(last) = dropped.last()
    {
        p.entries.push(Entry {
            scheduled_for: *last,
            outcome: RunOutcome::Missed,
            missed_count: (dropped.len() - MISSED_ONE_BY_ONE) as i64,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(s: u32) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-01T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
            + chrono::Duration::seconds(i64::from(s))
    }

    fn every_2s() -> CronRule {
        CronRule::parse("*/2 * * * * *").unwrap()
    }

    fn state<'a>(
        rule: &'a CronRule,
        overlap: Overlap,
        policy: CatchUpPolicy,
        active: &'a [ExecutionId],
    ) -> State<'a> {
        State {
            rule,
            tz: chrono_tz::UTC,
            overlap,
            catch_up: CatchUp {
                policy,
                window: Duration::from_secs(3600),
            },
            next_run_at: Some(at(0)),
            last_run_at: None,
            buffered_for: None,
            carried: &[],
            active,
        }
    }

    fn alive_all() -> Lives {
        Lives(vec![(at(0) - chrono::Duration::days(1), at(1000))])
    }

    fn starts(p: &Plan) -> Vec<DateTime<Utc>> {
        p.starts.iter().map(|(t, _)| *t).collect()
    }

    #[test]
    fn an_on_time_tick_starts_and_the_next_one_is_computed() {
        let rule = every_2s();
        let p = plan(
            &state(&rule, Overlap::Skip, CatchUpPolicy::Latest, &[]),
            at(0),
            &alive_all(),
        );
        assert_eq!(starts(&p), [at(0)]);
        assert_eq!(p.next_run_at, Some(at(2)));
        assert_eq!(p.last_run_at, Some(at(0)));
        assert!(p.entries.is_empty());
    }

    #[test]
    fn nothing_due_changes_nothing() {
        let rule = every_2s();
        let mut s = state(&rule, Overlap::Skip, CatchUpPolicy::Latest, &[]);
        s.next_run_at = Some(at(10));
        let p = plan(&s, at(5), &alive_all());
        assert!(p.starts.is_empty() && p.entries.is_empty());
        assert_eq!(p.next_run_at, Some(at(10)));
    }

    /// Down from 3 s to 13 s: ticks 4..12 came due while no replica was alive.
    fn downtime() -> Lives {
        Lives(vec![
            (at(0) - chrono::Duration::days(1), at(3)),
            (at(13), at(1000)),
        ])
    }

    fn missed(p: &Plan) -> Vec<DateTime<Utc>> {
        p.entries
            .iter()
            .filter(|e| e.outcome == RunOutcome::Missed)
            .map(|e| e.scheduled_for)
            .collect()
    }

    #[test]
    fn catch_up_none_latest_and_all() {
        let rule = every_2s();
        let ids: [ExecutionId; 0] = [];
        let mut s = state(&rule, Overlap::AllowAll, CatchUpPolicy::None, &ids);
        s.next_run_at = Some(at(4));
        let p = plan(&s, at(14), &downtime());
        assert_eq!(missed(&p), [at(4), at(6), at(8), at(10), at(12)]);
        assert_eq!(
            starts(&p),
            [at(14)],
            "the tick after the restart is on time"
        );
        assert_eq!(p.missed, 5);

        s.catch_up.policy = CatchUpPolicy::Latest;
        let p = plan(&s, at(14), &downtime());
        assert_eq!(missed(&p), [at(4), at(6), at(8), at(10)]);
        assert_eq!(starts(&p), [at(12), at(14)]);

        s.catch_up.policy = CatchUpPolicy::All;
        let p = plan(&s, at(14), &downtime());
        assert!(missed(&p).is_empty());
        assert_eq!(starts(&p), [at(4), at(6), at(8), at(10), at(12), at(14)]);
        // Only ticks within the window are fired.
        s.catch_up.window = Duration::from_secs(5);
        let p = plan(&s, at(14), &downtime());
        assert_eq!(missed(&p), [at(4), at(6), at(8)]);
        assert_eq!(starts(&p), [at(10), at(12), at(14)]);
    }

    #[test]
    fn past_a_hundred_missed_ticks_one_entry_carries_the_count() {
        let rule = every_2s();
        let mut s = state(&rule, Overlap::AllowAll, CatchUpPolicy::None, &[]);
        s.next_run_at = Some(at(4));
        let lives = Lives(vec![(at(1000), at(2000))]);
        let p = plan(&s, at(1000), &lives);
        let total: i64 = p.entries.iter().map(|e| e.missed_count).sum();
        assert_eq!(p.missed, total);
        assert_eq!(p.entries.len(), MISSED_ONE_BY_ONE + 1);
        assert_eq!(total, 498, "ticks 4..998 missed, 1000 on time");
        assert_eq!(starts(&p), [at(1000)]);
    }

    #[test]
    fn overlap_policies_with_a_run_still_going() {
        let rule = every_2s();
        let running = [ExecutionId::new()];
        let p = plan(
            &state(&rule, Overlap::Skip, CatchUpPolicy::Latest, &running),
            at(0),
            &alive_all(),
        );
        assert!(p.starts.is_empty());
        assert_eq!(p.entries[0].outcome, RunOutcome::SkippedOverlap);

        let p = plan(
            &state(&rule, Overlap::BufferOne, CatchUpPolicy::Latest, &running),
            at(0),
            &alive_all(),
        );
        assert_eq!(p.buffered_for, Some(at(0)));
        assert_eq!(p.entries[0].outcome, RunOutcome::Buffered);
        // A second tick while one waits is skipped: at most one waits.
        let mut s = state(&rule, Overlap::BufferOne, CatchUpPolicy::Latest, &running);
        s.buffered_for = Some(at(0));
        s.next_run_at = Some(at(2));
        let p = plan(&s, at(2), &alive_all());
        assert_eq!(p.buffered_for, Some(at(0)));
        assert_eq!(p.entries[0].outcome, RunOutcome::SkippedOverlap);
        // Once the run has ended, the buffered tick starts.
        let mut s = state(&rule, Overlap::BufferOne, CatchUpPolicy::Latest, &[]);
        s.buffered_for = Some(at(0));
        s.next_run_at = Some(at(4));
        let p = plan(&s, at(3), &alive_all());
        assert_eq!(starts(&p), [at(0)]);
        assert_eq!(p.buffered_for, None);

        let p = plan(
            &state(&rule, Overlap::CancelOther, CatchUpPolicy::Latest, &running),
            at(0),
            &alive_all(),
        );
        assert_eq!(p.cancel, running);
        assert_eq!(starts(&p), [at(0)]);

        let p = plan(
            &state(&rule, Overlap::AllowAll, CatchUpPolicy::Latest, &running),
            at(0),
            &alive_all(),
        );
        assert_eq!(starts(&p), [at(0)]);
    }

    #[test]
    fn a_slow_pass_fires_each_due_tick_once_and_skips_none() {
        // Alive throughout but 5 s behind: ticks 0, 2, 4 are due and on time.
        let rule = every_2s();
        let p = plan(
            &state(&rule, Overlap::AllowAll, CatchUpPolicy::None, &[]),
            at(5),
            &alive_all(),
        );
        assert_eq!(starts(&p), [at(0), at(2), at(4)]);
        assert!(p.starts.iter().all(|(_, on_time)| *on_time));
        assert_eq!(p.next_run_at, Some(at(6)));
    }

    #[test]
    fn ticks_carried_over_an_edit_fire_with_the_new_rule_s() {
        // The old rule's tick at 0 was due when the rule changed to every 10 s.
        let rule = CronRule::parse("*/10 * * * * *").unwrap();
        let carried = [at(0)];
        let mut s = state(&rule, Overlap::AllowAll, CatchUpPolicy::None, &[]);
        s.carried = &carried;
        s.next_run_at = Some(at(10));
        let p = plan(&s, at(1), &alive_all());
        assert_eq!(starts(&p), [at(0)]);
        assert_eq!(
            p.next_run_at,
            Some(at(10)),
            "the new rule's next tick stays"
        );
        let p = plan(&s, at(10), &alive_all());
        assert_eq!(starts(&p), [at(0), at(10)]);
    }
}
