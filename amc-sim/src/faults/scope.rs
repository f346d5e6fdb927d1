//! Rule limits: `match` (which executions a rule is about) and `times` (how many of them it
//! may touch). A data collection runs one SQL over many windows and retries a failed window
//! as a new execution with the same SQL and window, so "fail the first attempt of window 3"
//! is `match: {time_window_start: …}` with `times: 1` and `probability: 1.0`.
//!
//! Counting is per rule, under the simulator's state lock, over the life of the plan (a new
//! plan from the admin API starts every count at zero). Every limited rule whose criteria hold
//! counts the request, whether or not the draw then fires and whether or not an earlier rule
//! fired, so a rule's count never depends on the other rules.

use std::collections::HashMap;

/// What a request is about: the create request of one execution, as the client sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultSubject<'a> {
    /// The SQL run (a saved workflow's SQL for a run by `workflowId`).
    pub sql: &'a str,
    /// `timeWindowStart` exactly as sent, when sent.
    pub time_window_start: Option<&'a str>,
    /// `timeWindowEnd` exactly as sent, when sent.
    pub time_window_end: Option<&'a str>,
}

/// Criteria on the create request; a rule applies only when all given criteria hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultMatch {
    /// Equal to the `timeWindowStart` the client sent (e.g. `2026-01-05T00:00:00`).
    pub time_window_start: Option<String>,
    /// Equal to the `timeWindowEnd` the client sent.
    pub time_window_end: Option<String>,
    /// A substring of the SQL (e.g. a marker such as `/* fail_me */`).
    pub sql_contains: Option<String>,
}

impl FaultMatch {
    /// True when no criterion is given (the rule matches every request).
    pub fn is_empty(&self) -> bool {
        self.time_window_start.is_none()
            && self.time_window_end.is_none()
            && self.sql_contains.is_none()
    }

    /// True when every given criterion holds for `subject`; a request about no execution
    /// (`None`) matches only empty criteria.
    pub fn matches(&self, subject: Option<&FaultSubject<'_>>) -> bool {
        if self.is_empty() {
            return true;
        }
        let Some(s) = subject else {
            return false;
        };
        let same = |want: &Option<String>, got: Option<&str>| {
            want.as_deref().is_none_or(|w| got == Some(w))
        };
        same(&self.time_window_start, s.time_window_start)
            && same(&self.time_window_end, s.time_window_end)
            && self
                .sql_contains
                .as_deref()
                .is_none_or(|needle| s.sql.contains(needle))
    }
}

/// The limits of one rule.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultScope {
    /// Which requests the rule is about.
    pub criteria: FaultMatch,
    /// The rule applies to the first `times` matching requests only (at least 1).
    pub times: Option<u64>,
}

impl FaultScope {
    /// True when the scope limits nothing.
    pub fn is_unlimited(&self) -> bool {
        self.criteria.is_empty() && self.times.is_none()
    }
}

/// How many requests each limited rule has applied to, by rule index.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleHits(HashMap<usize, u64>);

impl RuleHits {
    /// Decides whether rule `index` with `scope` applies to `subject`, counting it if so.
    pub fn admit(
        &mut self,
        index: usize,
        scope: &FaultScope,
        subject: Option<&FaultSubject<'_>>,
    ) -> bool {
        if !scope.criteria.matches(subject) {
            return false;
        }
        let seen = self.0.entry(index).or_insert(0);
        if scope.times.is_some_and(|n| *seen >= n) {
            return false;
        }
        *seen += 1;
        true
    }

    /// Requests rule `index` has applied to so far.
    pub fn count(&self, index: usize) -> u64 {
        self.0.get(&index).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject<'a>(sql: &'a str, start: &'a str) -> FaultSubject<'a> {
        FaultSubject {
            sql,
            time_window_start: Some(start),
            time_window_end: Some("2026-01-12T00:00:00"),
        }
    }

    #[test]
    fn criteria_must_all_hold() {
        let m = FaultMatch {
            time_window_start: Some("2026-01-05T00:00:00".into()),
            sql_contains: Some("/* fail_me */".into()),
            ..FaultMatch::default()
        };
        assert!(m.matches(Some(&subject(
            "SELECT 1 /* fail_me */",
            "2026-01-05T00:00:00"
        ))));
        assert!(!m.matches(Some(&subject("SELECT 1", "2026-01-05T00:00:00"))));
        assert!(!m.matches(Some(&subject(
            "SELECT 1 /* fail_me */",
            "2026-01-12T00:00:00"
        ))));
        assert!(!m.matches(None));
        assert!(FaultMatch::default().matches(None));
    }

    #[test]
    fn times_counts_per_rule() {
        let scope = FaultScope {
            criteria: FaultMatch {
                sql_contains: Some("x".into()),
                ..FaultMatch::default()
            },
            times: Some(2),
        };
        let mut hits = RuleHits::default();
        let s = subject("SELECT x", "2026-01-05T00:00:00");
        let other = subject("SELECT y", "2026-01-05T00:00:00");
        assert!(!hits.admit(0, &scope, Some(&other)), "no match, no count");
        assert!(hits.admit(0, &scope, Some(&s)));
        assert!(hits.admit(1, &scope, Some(&s)), "rule 1 counts on its own");
        assert!(hits.admit(0, &scope, Some(&s)));
        assert!(!hits.admit(0, &scope, Some(&s)));
        assert_eq!(hits.count(0), 2);
        assert_eq!(hits.count(1), 1);
    }
}
