//! Fault injection seam: every fault decision is drawn from a hash of
//! (seed, execution, route, attempt), so a run is reproducible under concurrency.
//!
//! Only HTTP-level faults on AMC routes are wired so far (see [`FaultPlan`]); run-level
//! faults (FAILED runs, lost create answers, late downloads) plug in at the same place.

use sha2::{Digest, Sha256};

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
}

impl FaultRoute {
    /// A stable name, hashed into every draw.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::Create => "create",
            Self::Get => "get",
            Self::List => "list",
            Self::Cancel => "cancel",
            Self::DownloadUrls => "download_urls",
        }
    }
}

/// What an injected HTTP fault answers.
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
}

/// One rule: on `route`, answer `fault` with probability `probability` (0.0..=1.0).
#[derive(Debug, Clone)]
pub struct FaultRule {
    /// Where the rule applies.
    pub route: FaultRoute,
    /// Chance per attempt, drawn deterministically.
    pub probability: f64,
    /// What to answer.
    pub fault: HttpFault,
}

/// The faults to inject; empty (no faults) by default.
#[derive(Debug, Clone, Default)]
pub struct FaultPlan {
    /// Rules checked in order; the first that fires wins.
    pub rules: Vec<FaultRule>,
}

impl FaultPlan {
    /// The fault (if any) for this attempt of `route` on `key` (an execution id, instance id, …).
    pub fn pick(&self, seed: u64, key: &str, route: FaultRoute, attempt: u64) -> Option<HttpFault> {
        self.rules.iter().enumerate().find_map(|(i, rule)| {
            let salt = format!("{}#{i}", route.as_str());
            (rule.route == route && unit(draw(seed, key, &salt, attempt)) < rule.probability)
                .then(|| rule.fault.clone())
        })
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
}
