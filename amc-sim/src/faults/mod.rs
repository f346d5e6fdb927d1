//! Fault injection: every fault decision is drawn from a hash of
//! (seed, execution or request key, route, attempt), so a run is reproducible under
//! concurrency and independent across instances (the instance id is part of every key).
//!
//! HTTP-level faults ([`HttpFault::TooManyRequests`], [`HttpFault::ServerError`],
//! [`HttpFault::GatewayTimeout`], [`HttpFault::Slow`], [`HttpFault::ExpiredToken`]) apply to
//! any route; [`HttpFault::LostAnswer`] and [`HttpFault::HeldAnswer`] only to
//! [`FaultRoute::Create`]; run-level faults ([`HttpFault::Failed`], [`HttpFault::StatusDetour`],
//! [`HttpFault::LateDownload`]) only to [`FaultRoute::Run`], drawn once per created run.
//! A rule may be limited to some executions and to a number of them (`match` and `times`,
//! see [`scope`]). The JSON form (admin API, `AMP_SIM_FAULTS`) lives in [`doc`].

pub mod doc;
mod reasons;
pub mod scope;

use sha2::{Digest, Sha256};

pub use doc::{FaultsDoc, RuleError};
pub use reasons::{COMPILE_ERROR, FailReason, privacy_rejection, timeout_reason};
pub use scope::{FaultMatch, FaultScope, FaultSubject, RuleHits};

/// The routes a fault can be attached to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultRoute {
    /// `POST /auth/o2/token`.
    Token,
    /// `POST .../workflowExecutions`.
    Create,
    /// `GET .../workflowExecutions/{id}`.
    Get,
    /// `GET .../workflowExecutions`.
    List,
    /// `PUT`/`DELETE .../workflowExecutions/{id}`.
    Cancel,
    /// `GET .../workflowExecutions/{id}/downloadUrls`.
    DownloadUrls,
    /// The life of a created run (drawn once per run, attempt 0).
    Run,
}

impl FaultRoute {
    /// Every route, in a fixed order.
    pub const ALL: [FaultRoute; 7] = [
        Self::Token,
        Self::Create,
        Self::Get,
        Self::List,
        Self::Cancel,
        Self::DownloadUrls,
        Self::Run,
    ];

    /// A stable name, hashed into every draw and used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::Create => "create",
            Self::Get => "get",
            Self::List => "list",
            Self::Cancel => "cancel",
            Self::DownloadUrls => "download_urls",
            Self::Run => "run",
        }
    }

    /// The route named `s` (see [`FaultRoute::as_str`]).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// True when a request on this route is about one execution (so `match` can apply).
    pub fn has_subject(self) -> bool {
        !matches!(self, Self::Token | Self::List)
    }
}

/// How a lost create answer reaches the client (the run exists either way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LostAnswer {
    /// A 502 `{"message":"Bad Gateway"}`.
    BadGateway,
    /// The connection is dropped before a complete answer.
    Drop,
    /// Nothing for `after_ms`, then the connection is dropped.
    Timeout {
        /// How long to stay silent first.
        after_ms: u64,
    },
}

/// A status shown for a while instead of the final one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DetourStatus {
    /// `PUBLISHING` (not terminal) before `SUCCEEDED`.
    Publishing,
    /// `REJECTED` (a legacy failure) before `FAILED`, with the same `statusReason`.
    Rejected,
}

/// What an injected fault does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpFault {
    /// 429 with `Retry-After: <secs>`.
    TooManyRequests {
        /// Value of the `Retry-After` header, in seconds.
        retry_after_secs: u64,
    },
    /// A bare 5xx (500, 502, 503).
    ServerError(u16),
    /// 504 `{"message":"Endpoint request timed out"}`.
    GatewayTimeout,
    /// Wait `delay_ms` before handling the request normally.
    Slow {
        /// The delay in milliseconds.
        delay_ms: u64,
    },
    /// Answer as for an expired token (401, or 403 per `expired_token_status`) and
    /// invalidate the bearer token, so the client must refresh.
    ExpiredToken,
    /// Create only: the run is created but the client does not learn its id.
    LostAnswer(LostAnswer),
    /// Create only: the run is created; the answer is held `delay_ms` (or until released).
    HeldAnswer {
        /// How long the answer is held.
        delay_ms: u64,
    },
    /// Run only: the run ends FAILED; `reason` fixed, or drawn when `None`.
    Failed {
        /// The failure reason; `None` draws one of the three.
        reason: Option<FailReason>,
    },
    /// Run only: the run shows `status` for `duration_ms` when it ends.
    StatusDetour {
        /// PUBLISHING or REJECTED.
        status: DetourStatus,
        /// How long it shows.
        duration_ms: u64,
    },
    /// Run only: after SUCCEEDED, downloadUrls says "unavailable for download" for `delay_ms`.
    LateDownload {
        /// How long results stay unavailable.
        delay_ms: u64,
    },
    /// A fault limited by its rule's `match` / `times` (see [`FaultRule::scoped`]); draws
    /// hand out the inner fault, never this wrapper.
    Scoped(Box<ScopedFault>),
}

/// A fault with the limits of its rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopedFault {
    /// Which requests, and how many, the rule applies to.
    pub scope: FaultScope,
    /// What to answer when it applies.
    pub fault: HttpFault,
}

impl HttpFault {
    /// The kind's name, as in JSON and in `faults_injected`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::TooManyRequests { .. } => "too_many_requests",
            Self::ServerError(_) => "server_error",
            Self::GatewayTimeout => "gateway_timeout",
            Self::Slow { .. } => "slow",
            Self::ExpiredToken => "expired_token",
            Self::LostAnswer(_) => "lost_answer",
            Self::HeldAnswer { .. } => "held_answer",
            Self::Failed { .. } => "failed",
            Self::StatusDetour { .. } => "status_detour",
            Self::LateDownload { .. } => "late_download",
            Self::Scoped(s) => s.fault.kind(),
        }
    }

    /// True when `route` can carry this fault.
    pub fn fits(&self, route: FaultRoute) -> bool {
        match self {
            Self::LostAnswer(_) | Self::HeldAnswer { .. } => route == FaultRoute::Create,
            Self::Failed { .. } | Self::StatusDetour { .. } | Self::LateDownload { .. } => {
                route == FaultRoute::Run
            }
            Self::ExpiredToken => !matches!(route, FaultRoute::Token | FaultRoute::Run),
            Self::Scoped(s) => {
                s.fault.fits(route) && (s.scope.criteria.is_empty() || route.has_subject())
            }
            _ => route != FaultRoute::Run,
        }
    }

    /// The fault itself and its limits (none for an unscoped fault).
    pub fn parts(&self) -> (&HttpFault, Option<&FaultScope>) {
        match self {
            Self::Scoped(s) => (&s.fault, Some(&s.scope)),
            other => (other, None),
        }
    }
}

/// One rule: on `route`, answer `fault` with probability `probability` (0.0..=1.0). A rule
/// limited by `match` / `times` carries its limits in [`HttpFault::Scoped`] (build it with
/// [`FaultRule::scoped`]), which keeps this struct's three fields as they were.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultRule {
    /// Where the rule applies.
    pub route: FaultRoute,
    /// Chance per attempt, drawn deterministically.
    pub probability: f64,
    /// What to answer (possibly [`HttpFault::Scoped`]).
    pub fault: HttpFault,
}

impl FaultRule {
    /// A rule on `route` limited by `scope` (`match` / `times`); an unlimited scope gives a
    /// plain rule.
    pub fn scoped(
        route: FaultRoute,
        probability: f64,
        fault: HttpFault,
        scope: FaultScope,
    ) -> Self {
        let fault = if scope.is_unlimited() {
            fault
        } else {
            HttpFault::Scoped(Box::new(ScopedFault { scope, fault }))
        };
        Self {
            route,
            probability,
            fault,
        }
    }
}

/// The faults to inject; empty (no faults) by default.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultPlan {
    /// Rules checked in order; the first that fires wins (on [`FaultRoute::Run`], every
    /// rule is drawn on its own and all that fire apply).
    pub rules: Vec<FaultRule>,
}

impl FaultPlan {
    /// The fault (if any) for this attempt of `route` on `key` (an execution id, instance id,
    /// request key); `subject` is what the request is about, `hits` the counts of limited
    /// rules (updated).
    pub fn pick(
        &self,
        draw_at: Draw<'_>,
        subject: Option<&FaultSubject<'_>>,
        hits: &mut RuleHits,
    ) -> Option<HttpFault> {
        self.pick_all(draw_at, subject, hits).into_iter().next()
    }

    /// Every rule of the route that fires for this attempt, in rule order. A limited rule
    /// takes part only when [`RuleHits::admit`] lets it (which counts the request); the draw
    /// of every rule is the same as for an unlimited rule.
    pub fn pick_all(
        &self,
        at: Draw<'_>,
        subject: Option<&FaultSubject<'_>>,
        hits: &mut RuleHits,
    ) -> Vec<HttpFault> {
        let mut out = Vec::new();
        for (i, rule) in self.rules.iter().enumerate() {
            if rule.route != at.route {
                continue;
            }
            let (fault, scope) = rule.fault.parts();
            if scope.is_some_and(|scope| !hits.admit(i, scope, subject)) {
                continue;
            }
            let salt = format!("{}#{i}", at.route.as_str());
            if unit(draw(at.seed, at.key, &salt, at.attempt)) < rule.probability {
                out.push(fault.clone());
            }
        }
        out
    }
}

/// Where a draw happens: seed, key, route and attempt number.
#[derive(Debug, Clone, Copy)]
pub struct Draw<'a> {
    /// The seed of every draw.
    pub seed: u64,
    /// The execution, request or instance key.
    pub key: &'a str,
    /// The route drawn for.
    pub route: FaultRoute,
    /// The attempt on (route, key), from 0.
    pub attempt: u64,
}

/// A deterministic 64-bit draw for (seed, key, route, attempt).
pub fn draw(seed: u64, key: &str, route: &str, attempt: u64) -> u64 {
    let mut h = Sha256::new();
    h.update(seed.to_be_bytes());
    h.update(key.as_bytes());
    h.update([0]);
    h.update(route.as_bytes());
    h.update(attempt.to_be_bytes());
    let d = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&d[..8]);
    u64::from_be_bytes(first)
}

/// Maps a draw onto `[0, 1)`.
fn unit(x: u64) -> f64 {
    (x >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(key: &str, route: FaultRoute, attempt: u64) -> Draw<'_> {
        Draw {
            seed: 0,
            key,
            route,
            attempt,
        }
    }

    #[test]
    fn draws_are_deterministic_and_spread() {
        assert_eq!(draw(1, "e", "get", 0), draw(1, "e", "get", 0));
        assert_ne!(draw(1, "e", "get", 0), draw(1, "e", "get", 1));
        assert_ne!(draw(1, "e", "get", 0), draw(2, "e", "get", 0));
    }

    #[test]
    fn probability_bounds() {
        let always = FaultPlan {
            rules: vec![FaultRule {
                route: FaultRoute::Get,
                probability: 1.0,
                fault: HttpFault::GatewayTimeout,
            }],
        };
        let mut hits = RuleHits::default();
        assert_eq!(
            always.pick(at("x", FaultRoute::Get, 3), None, &mut hits),
            Some(HttpFault::GatewayTimeout)
        );
        assert_eq!(
            always.pick(at("x", FaultRoute::List, 3), None, &mut hits),
            None
        );
        let never = FaultPlan {
            rules: vec![FaultRule {
                probability: 0.0,
                ..always.rules[0].clone()
            }],
        };
        assert_eq!(
            never.pick(at("x", FaultRoute::Get, 3), None, &mut hits),
            None
        );
    }

    #[test]
    fn run_rules_fire_independently() {
        let rule = |fault| FaultRule {
            route: FaultRoute::Run,
            probability: 1.0,
            fault,
        };
        let plan = FaultPlan {
            rules: vec![
                rule(HttpFault::Failed { reason: None }),
                rule(HttpFault::LateDownload { delay_ms: 5 }),
            ],
        };
        let mut hits = RuleHits::default();
        assert_eq!(
            plan.pick_all(at("k", FaultRoute::Run, 0), None, &mut hits)
                .len(),
            2
        );
    }

    #[test]
    fn scoped_rules_hand_out_the_inner_fault_within_their_limits() {
        let scope = FaultScope {
            criteria: FaultMatch {
                time_window_start: Some("2026-01-05T00:00:00".into()),
                ..FaultMatch::default()
            },
            times: Some(1),
        };
        let failed = HttpFault::Failed { reason: None };
        let plan = FaultPlan {
            rules: vec![FaultRule::scoped(
                FaultRoute::Run,
                1.0,
                failed.clone(),
                scope,
            )],
        };
        assert_eq!(plan.rules[0].fault.kind(), "failed");
        let window = |start| FaultSubject {
            sql: "SELECT 1",
            time_window_start: Some(start),
            time_window_end: None,
        };
        let mut hits = RuleHits::default();
        let mut pick =
            |start| plan.pick(at("k", FaultRoute::Run, 0), Some(&window(start)), &mut hits);
        assert_eq!(pick("2026-01-12T00:00:00"), None);
        assert_eq!(pick("2026-01-05T00:00:00"), Some(failed));
        assert_eq!(pick("2026-01-05T00:00:00"), None, "times: 1");
        let plain = FaultRule::scoped(
            FaultRoute::Get,
            1.0,
            HttpFault::GatewayTimeout,
            FaultScope::default(),
        );
        assert_eq!(plain.fault, HttpFault::GatewayTimeout);
    }

    #[test]
    fn kinds_fit_their_routes() {
        assert!(HttpFault::LostAnswer(LostAnswer::Drop).fits(FaultRoute::Create));
        assert!(!HttpFault::LostAnswer(LostAnswer::Drop).fits(FaultRoute::Get));
        assert!(HttpFault::Failed { reason: None }.fits(FaultRoute::Run));
        assert!(!HttpFault::GatewayTimeout.fits(FaultRoute::Run));
        assert!(!HttpFault::ExpiredToken.fits(FaultRoute::Token));
        let matched = FaultRule::scoped(
            FaultRoute::List,
            1.0,
            HttpFault::GatewayTimeout,
            FaultScope {
                criteria: FaultMatch {
                    sql_contains: Some("x".into()),
                    ..FaultMatch::default()
                },
                times: None,
            },
        );
        assert!(
            !matched.fault.fits(FaultRoute::List),
            "a list is about no execution"
        );
        assert!(matched.fault.fits(FaultRoute::Get));
        for r in FaultRoute::ALL {
            assert_eq!(FaultRoute::parse(r.as_str()), Some(r));
        }
    }
}
