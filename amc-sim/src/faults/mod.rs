//! Fault injection: every fault decision is drawn from a hash of
//! (seed, execution or request key, route, attempt), so a run is reproducible under
//! concurrency and independent across instances (the instance id is part of every key).
//!
//! HTTP-level faults ([`HttpFault::TooManyRequests`], [`HttpFault::ServerError`],
//! [`HttpFault::GatewayTimeout`], [`HttpFault::Slow`], [`HttpFault::ExpiredToken`]) apply to
//! any route; [`HttpFault::LostAnswer`] and [`HttpFault::HeldAnswer`] only to
//! [`FaultRoute::Create`]; run-level faults ([`HttpFault::Failed`], [`HttpFault::StatusDetour`],
//! [`HttpFault::LateDownload`]) only to [`FaultRoute::Run`], drawn once per created run.
//! The JSON form (admin API, `AMP_SIM_FAULTS`) lives in [`doc`].

pub mod doc;
mod reasons;

use sha2::{Digest, Sha256};

pub use doc::{FaultsDoc, RuleError};
pub use reasons::{COMPILE_ERROR, FailReason, privacy_rejection, timeout_reason};

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
            _ => route != FaultRoute::Run,
        }
    }
}

/// One rule: on `route`, answer `fault` with probability `probability` (0.0..=1.0).
#[derive(Debug, Clone, PartialEq)]
pub struct FaultRule {
    /// Where the rule applies.
    pub route: FaultRoute,
    /// Chance per attempt, drawn deterministically.
    pub probability: f64,
    /// What to answer.
    pub fault: HttpFault,
}

/// The faults to inject; empty (no faults) by default.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultPlan {
    /// Rules checked in order; the first that fires wins (on [`FaultRoute::Run`], every
    /// rule is drawn on its own and all that fire apply).
    pub rules: Vec<FaultRule>,
}

impl FaultPlan {
    /// The fault (if any) for this attempt of `route` on `key` (an execution id, instance id, …).
    pub fn pick(&self, seed: u64, key: &str, route: FaultRoute, attempt: u64) -> Option<HttpFault> {
        self.pick_all(seed, key, route, attempt).into_iter().next()
    }

    /// Every rule of `route` that fires for this attempt, in rule order.
    pub fn pick_all(
        &self,
        seed: u64,
        key: &str,
        route: FaultRoute,
        attempt: u64,
    ) -> Vec<HttpFault> {
        self.rules
            .iter()
            .enumerate()
            .filter(|(i, rule)| {
                let salt = format!("{}#{i}", route.as_str());
                rule.route == route && unit(draw(seed, key, &salt, attempt)) < rule.probability
            })
            .map(|(_, rule)| rule.fault.clone())
            .collect()
    }
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
        assert_eq!(
            always.pick(0, "x", FaultRoute::Get, 3),
            Some(HttpFault::GatewayTimeout)
        );
        assert_eq!(always.pick(0, "x", FaultRoute::List, 3), None);
        let never = FaultPlan {
            rules: vec![FaultRule {
                probability: 0.0,
                ..always.rules[0].clone()
            }],
        };
        assert_eq!(never.pick(0, "x", FaultRoute::Get, 3), None);
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
        assert_eq!(plan.pick_all(0, "k", FaultRoute::Run, 0).len(), 2);
    }

    #[test]
    fn kinds_fit_their_routes() {
        assert!(HttpFault::LostAnswer(LostAnswer::Drop).fits(FaultRoute::Create));
        assert!(!HttpFault::LostAnswer(LostAnswer::Drop).fits(FaultRoute::Get));
        assert!(HttpFault::Failed { reason: None }.fits(FaultRoute::Run));
        assert!(!HttpFault::GatewayTimeout.fits(FaultRoute::Run));
        assert!(!HttpFault::ExpiredToken.fits(FaultRoute::Token));
        for r in FaultRoute::ALL {
            assert_eq!(FaultRoute::parse(r.as_str()), Some(r));
        }
    }
}
