//! The JSON form of a fault plan, shared by `POST /sim/admin/faults` and `AMP_SIM_FAULTS`:
//!
//! ```json
//! {"seed": 7, "expired_token_status": 401,
//!  "rules": [{"route": "get", "probability": 0.1,
//!             "fault": {"kind": "too_many_requests", "retry_after_secs": 1}},
//!            {"route": "run", "probability": 1.0, "times": 1,
//!             "match": {"time_window_start": "2026-01-05T00:00:00"},
//!             "fault": {"kind": "failed", "reason": "compile"}}]}
//! ```
//!
//! A bare list of rules is accepted too. Kinds and their fields: `too_many_requests`
//! (`retry_after_secs`, default 1), `server_error` (`status` 500/502/503, default 500),
//! `gateway_timeout`, `slow` (`delay_ms`), `expired_token`, `lost_answer` (`mode`
//! `bad_gateway`|`drop`|`timeout`, `delay_ms` for timeout), `held_answer` (`delay_ms`),
//! `failed` (`reason` `compile`|`privacy`|`timeout`, drawn when absent), `status_detour`
//! (`status` `PUBLISHING`|`REJECTED`, `duration_ms`), `late_download` (`delay_ms`).
//! Routes: `token`, `create`, `get`, `list`, `cancel`, `download_urls`, `run`.
//!
//! Optional limits on a rule (see [`super::scope`]): `match`, an object of
//! `time_window_start` and `time_window_end` (equal to the string the client sent) and
//! `sql_contains` (a substring of the SQL), all of which must hold, on the routes about one
//! execution (`create`, `run`, `get`, `cancel`, `download_urls`; a `get`, `cancel` or
//! `download_urls` request is matched against the create request of its execution); and
//! `times`, an integer of at least 1: the rule applies to the first `times` matching
//! requests only (created executions on `run`, create requests on `create`, requests on the
//! other routes), counted per rule while the plan is in force.

use serde_json::{Map, Value, json};

use super::{
    DetourStatus, FailReason, FaultMatch, FaultPlan, FaultRoute, FaultRule, FaultScope, HttpFault,
    LostAnswer,
};

/// A rule or document that cannot be used, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RuleError(pub String);

/// A parsed fault document: the plan plus its scalar knobs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultsDoc {
    /// Replaces the seed of every draw when present.
    pub seed: Option<u64>,
    /// 401 or 403 for an expired token, when present.
    pub expired_token_status: Option<u16>,
    /// The rules.
    pub plan: FaultPlan,
}

impl FaultsDoc {
    /// Parses a document (object or bare list of rules).
    pub fn parse(text: &[u8]) -> Result<Self, RuleError> {
        let v: Value = serde_json::from_slice(text).map_err(|e| err(format!("not JSON: {e}")))?;
        Self::from_value(&v)
    }

    /// Like [`FaultsDoc::parse`], from a JSON value.
    pub fn from_value(v: &Value) -> Result<Self, RuleError> {
        let (obj, rules) = match v {
            Value::Array(rules) => (Map::new(), rules.clone()),
            Value::Object(obj) => {
                for k in obj.keys() {
                    if !["seed", "rules", "expired_token_status"].contains(&k.as_str()) {
                        return Err(err(format!("unknown field {k:?}")));
                    }
                }
                let rules = match obj.get("rules") {
                    None | Some(Value::Null) => Vec::new(),
                    Some(Value::Array(r)) => r.clone(),
                    Some(_) => return Err(err("rules must be a list")),
                };
                (obj.clone(), rules)
            }
            _ => return Err(err("expected an object or a list of rules")),
        };
        let seed = match obj.get("seed") {
            None | Some(Value::Null) => None,
            Some(s) => Some(
                s.as_u64()
                    .ok_or_else(|| err("seed must be an unsigned integer"))?,
            ),
        };
        let expired_token_status = match obj.get("expired_token_status") {
            None | Some(Value::Null) => None,
            Some(s) => match s.as_u64() {
                Some(401) => Some(401),
                Some(403) => Some(403),
                _ => return Err(err("expired_token_status must be 401 or 403")),
            },
        };
        let rules = rules
            .iter()
            .enumerate()
            .map(|(i, r)| rule_from_value(r).map_err(|e| err(format!("rules[{i}]: {e}"))))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            seed,
            expired_token_status,
            plan: FaultPlan { rules },
        })
    }
}

/// The JSON of a plan with its seed and expired-token status.
pub fn plan_json(seed: u64, expired_token_status: u16, plan: &FaultPlan) -> Value {
    json!({
        "seed": seed,
        "expired_token_status": expired_token_status,
        "rules": plan.rules.iter().map(rule_json).collect::<Vec<_>>(),
    })
}

/// The JSON of one rule (limits as `match` / `times` beside `fault`).
pub fn rule_json(rule: &FaultRule) -> Value {
    let (fault, scope) = rule.fault.parts();
    let mut v = json!({"route": rule.route.as_str(), "probability": rule.probability,
                       "fault": fault_json(fault)});
    if let (Some(scope), Some(obj)) = (scope, v.as_object_mut()) {
        let m = &scope.criteria;
        if !m.is_empty() {
            let mut crit = Map::new();
            for (k, val) in [
                ("time_window_start", &m.time_window_start),
                ("time_window_end", &m.time_window_end),
                ("sql_contains", &m.sql_contains),
            ] {
                if let Some(val) = val {
                    crit.insert(k.to_owned(), json!(val));
                }
            }
            obj.insert("match".to_owned(), Value::Object(crit));
        }
        if let Some(times) = scope.times {
            obj.insert("times".to_owned(), json!(times));
        }
    }
    v
}

fn fault_json(f: &HttpFault) -> Value {
    let kind = f.kind();
    match f {
        HttpFault::TooManyRequests { retry_after_secs } => {
            json!({"kind": kind, "retry_after_secs": retry_after_secs})
        }
        HttpFault::ServerError(status) => json!({"kind": kind, "status": status}),
        HttpFault::GatewayTimeout | HttpFault::ExpiredToken => json!({"kind": kind}),
        HttpFault::Slow { delay_ms }
        | HttpFault::HeldAnswer { delay_ms }
        | HttpFault::LateDownload { delay_ms } => json!({"kind": kind, "delay_ms": delay_ms}),
        HttpFault::LostAnswer(LostAnswer::BadGateway) => {
            json!({"kind": kind, "mode": "bad_gateway"})
        }
        HttpFault::LostAnswer(LostAnswer::Drop) => json!({"kind": kind, "mode": "drop"}),
        HttpFault::LostAnswer(LostAnswer::Timeout { after_ms }) => {
            json!({"kind": kind, "mode": "timeout", "delay_ms": after_ms})
        }
        HttpFault::Failed { reason } => {
            json!({"kind": kind, "reason": reason.map(FailReason::as_str)})
        }
        HttpFault::StatusDetour {
            status,
            duration_ms,
        } => json!({
            "kind": kind,
            "status": match status { DetourStatus::Publishing => "PUBLISHING", DetourStatus::Rejected => "REJECTED" },
            "duration_ms": duration_ms,
        }),
        HttpFault::Scoped(s) => fault_json(&s.fault),
    }
}

fn rule_from_value(v: &Value) -> Result<FaultRule, RuleError> {
    let route_name = v
        .get("route")
        .and_then(Value::as_str)
        .ok_or_else(|| err("route must be a string"))?;
    let route = FaultRoute::parse(route_name)
        .ok_or_else(|| err(format!("unknown route {route_name:?}")))?;
    let probability = v
        .get("probability")
        .and_then(Value::as_f64)
        .filter(|p| (0.0..=1.0).contains(p))
        .ok_or_else(|| err("probability must be a number in 0..=1"))?;
    let f = v.get("fault").ok_or_else(|| err("fault is missing"))?;
    let fault = fault_from_value(f)?;
    if !fault.fits(route) {
        return Err(err(format!(
            "fault {} does not apply to route {route_name}",
            fault.kind()
        )));
    }
    let scope = scope_from_value(v)?;
    if !scope.criteria.is_empty() && !route.has_subject() {
        return Err(err(format!(
            "match does not apply to route {route_name} (it is about no one execution)"
        )));
    }
    Ok(FaultRule::scoped(route, probability, fault, scope))
}

/// The rule's optional `match` and `times`.
fn scope_from_value(v: &Value) -> Result<FaultScope, RuleError> {
    let times = match v.get("times") {
        None | Some(Value::Null) => None,
        Some(t) => Some(
            t.as_u64()
                .filter(|n| *n >= 1)
                .ok_or_else(|| err("times must be an integer of at least 1"))?,
        ),
    };
    let criteria = match v.get("match") {
        None | Some(Value::Null) => FaultMatch::default(),
        Some(Value::Object(m)) => {
            let mut out = FaultMatch::default();
            for (k, val) in m {
                let text = val
                    .as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| err(format!("match.{k} must be a string")))?;
                match k.as_str() {
                    "time_window_start" => out.time_window_start = Some(text),
                    "time_window_end" => out.time_window_end = Some(text),
                    "sql_contains" => out.sql_contains = Some(text),
                    other => {
                        return Err(err(format!(
                            "unknown match field {other:?} (time_window_start, time_window_end, sql_contains)"
                        )));
                    }
                }
            }
            out
        }
        Some(_) => return Err(err("match must be an object")),
    };
    Ok(FaultScope { criteria, times })
}

fn fault_from_value(f: &Value) -> Result<HttpFault, RuleError> {
    let kind = f
        .get("kind")
        .and_then(Value::as_str)
        .ok_or_else(|| err("fault.kind must be a string"))?;
    let uint = |name: &str, default: Option<u64>| -> Result<u64, RuleError> {
        match f.get(name) {
            None | Some(Value::Null) => default.ok_or_else(|| err(format!("{kind} needs {name}"))),
            Some(v) => v
                .as_u64()
                .ok_or_else(|| err(format!("{name} must be an unsigned integer"))),
        }
    };
    let text = |name: &str| f.get(name).and_then(Value::as_str);
    Ok(match kind {
        "too_many_requests" => HttpFault::TooManyRequests {
            retry_after_secs: uint("retry_after_secs", Some(1))?,
        },
        "server_error" => match uint("status", Some(500))? {
            s @ (500 | 502 | 503) => HttpFault::ServerError(s as u16),
            s => {
                return Err(err(format!(
                    "server_error status must be 500, 502 or 503, not {s}"
                )));
            }
        },
        "gateway_timeout" => HttpFault::GatewayTimeout,
        "slow" => HttpFault::Slow {
            delay_ms: uint("delay_ms", None)?,
        },
        "expired_token" => HttpFault::ExpiredToken,
        "lost_answer" => HttpFault::LostAnswer(match text("mode").unwrap_or("bad_gateway") {
            "bad_gateway" => LostAnswer::BadGateway,
            "drop" => LostAnswer::Drop,
            "timeout" => LostAnswer::Timeout {
                after_ms: uint("delay_ms", Some(30_000))?,
            },
            m => return Err(err(format!("unknown lost_answer mode {m:?}"))),
        }),
        "held_answer" => HttpFault::HeldAnswer {
            delay_ms: uint("delay_ms", None)?,
        },
        "failed" => HttpFault::Failed {
            reason: match text("reason") {
                None => None,
                Some(r) => {
                    Some(FailReason::parse(r).ok_or_else(|| err(format!("unknown reason {r:?}")))?)
                }
            },
        },
        "status_detour" => HttpFault::StatusDetour {
            status: match text("status") {
                Some("PUBLISHING") => DetourStatus::Publishing,
                Some("REJECTED") => DetourStatus::Rejected,
                _ => return Err(err("status_detour status must be PUBLISHING or REJECTED")),
            },
            duration_ms: uint("duration_ms", None)?,
        },
        "late_download" => HttpFault::LateDownload {
            delay_ms: uint("delay_ms", None)?,
        },
        other => return Err(err(format!("unknown fault kind {other:?}"))),
    })
}

fn err(msg: impl Into<String>) -> RuleError {
    RuleError(msg.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_kind() {
        let doc = json!({"seed": 9, "expired_token_status": 403, "rules": [
            {"route": "get", "probability": 0.1, "fault": {"kind": "too_many_requests", "retry_after_secs": 2}},
            {"route": "list", "probability": 0.2, "fault": {"kind": "server_error", "status": 503}},
            {"route": "get", "probability": 0.3, "fault": {"kind": "gateway_timeout"}},
            {"route": "download_urls", "probability": 0.4, "fault": {"kind": "slow", "delay_ms": 10}},
            {"route": "get", "probability": 0.5, "fault": {"kind": "expired_token"}},
            {"route": "create", "probability": 0.6, "fault": {"kind": "lost_answer", "mode": "timeout", "delay_ms": 5}},
            {"route": "create", "probability": 0.7, "fault": {"kind": "held_answer", "delay_ms": 5}},
            {"route": "run", "probability": 0.8, "fault": {"kind": "failed", "reason": "privacy"}},
            {"route": "run", "probability": 0.9, "fault": {"kind": "status_detour", "status": "REJECTED", "duration_ms": 5}},
            {"route": "run", "probability": 1.0, "fault": {"kind": "late_download", "delay_ms": 5}},
            {"route": "run", "probability": 1.0, "times": 1,
             "match": {"time_window_start": "2026-01-05T00:00:00", "sql_contains": "/* fail_me */"},
             "fault": {"kind": "failed", "reason": "compile"}},
            {"route": "create", "probability": 1.0, "times": 2,
             "fault": {"kind": "server_error", "status": 500}},
            {"route": "get", "probability": 0.5, "match": {"time_window_end": "2026-01-12T00:00:00"},
             "fault": {"kind": "gateway_timeout"}},
        ]});
        let parsed = FaultsDoc::from_value(&doc).expect("valid");
        assert_eq!(parsed.seed, Some(9));
        assert_eq!(parsed.plan.rules.len(), 13);
        let back = plan_json(9, 403, &parsed.plan);
        assert_eq!(back, doc);
        assert_eq!(FaultsDoc::from_value(&back).expect("again"), parsed);
    }

    #[test]
    fn rejects_bad_rules() {
        for bad in [
            json!([{"route": "nowhere", "probability": 0.1, "fault": {"kind": "gateway_timeout"}}]),
            json!([{"route": "get", "probability": 1.5, "fault": {"kind": "gateway_timeout"}}]),
            json!([{"route": "get", "probability": 0.1, "fault": {"kind": "lost_answer"}}]),
            json!([{"route": "create", "probability": 0.1, "fault": {"kind": "failed"}}]),
            json!([{"route": "get", "probability": 0.1, "fault": {"kind": "server_error", "status": 418}}]),
            json!([{"route": "get", "probability": 0.1, "fault": {"kind": "slow"}}]),
            json!({"rules": [], "bogus": 1}),
            json!([{"route": "run", "probability": 1.0, "times": 0, "fault": {"kind": "failed"}}]),
            json!([{"route": "run", "probability": 1.0, "times": "1", "fault": {"kind": "failed"}}]),
            json!([{"route": "run", "probability": 1.0, "match": "x", "fault": {"kind": "failed"}}]),
            json!([{"route": "run", "probability": 1.0, "match": {"window": "x"}, "fault": {"kind": "failed"}}]),
            json!([{"route": "run", "probability": 1.0, "match": {"sql_contains": 1}, "fault": {"kind": "failed"}}]),
            json!([{"route": "list", "probability": 1.0, "match": {"sql_contains": "x"}, "fault": {"kind": "gateway_timeout"}}]),
            json!({"expired_token_status": 500}),
            json!("nope"),
        ] {
            assert!(FaultsDoc::from_value(&bad).is_err(), "{bad}");
        }
    }
}
