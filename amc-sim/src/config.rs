//! Simulator configuration: defaults, and loading from `AMP_SIM_*` / `AMP_LWA_*` variables.

use std::net::SocketAddr;
use std::time::Duration;

use crate::faults::FaultPlan;
use crate::fixtures::{self, AmcAccount, AmcInstance};
use crate::validate::DEFAULT_ADHOC_MAX_BYTES;

/// A configuration value that could not be used; names the variable.
#[derive(Debug, thiserror::Error)]
#[error("invalid value {value:?} for {var}: {reason}")]
pub struct ConfigError {
    /// The environment variable at fault.
    pub var: &'static str,
    /// The value it held.
    pub value: String,
    /// Why it was rejected.
    pub reason: String,
}

/// Everything the simulator needs to start. `Default` gives the development set-up.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Where to listen (`AMP_SIM_ADDR`, default `127.0.0.1:8090`; port 0 picks a free port).
    pub addr: SocketAddr,
    /// The only LWA client id accepted (`AMP_LWA_CLIENT_ID`, default `dev-client`).
    pub client_id: String,
    /// The only LWA client secret accepted (`AMP_LWA_CLIENT_SECRET`, default `dev-secret`).
    pub client_secret: String,
    /// How long a RUNNING execution takes to succeed (`AMP_SIM_RUN_DURATION`, default 2 s).
    pub run_duration: Duration,
    /// Lifetime of issued access tokens (`AMP_SIM_TOKEN_TTL`, default 3600 s).
    pub token_ttl: Duration,
    /// RUNNING executions allowed per instance (`AMP_SIM_MAX_RUNNING`, default 10).
    pub max_running: usize,
    /// Seed for every pseudo-random choice (`AMP_SIM_SEED`, default 0).
    pub seed: u64,
    /// Lifetime of download URLs (`AMP_SIM_DOWNLOAD_URL_TTL`, default 10 min).
    pub download_url_ttl: Duration,
    /// Result files per execution (default 1; at least 2 when a result has more than 100,000 rows).
    pub parts: u32,
    /// Status for an unknown or expired bearer token: 401 (default) or 403.
    pub expired_token_status: u16,
    /// Status for "unavailable for download": 404 (default) or 400.
    pub unavailable_status: u16,
    /// Fault injection (all off by default; `AMP_SIM_FAULTS`, JSON as in
    /// [`crate::faults::doc`]).
    pub faults: FaultPlan,
    /// Largest `sqlQuery` of an ad hoc execution, in bytes (`AMP_SIM_ADHOC_MAX_BYTES`,
    /// default 102400; an assumption, no public source states AMC's limit).
    pub adhoc_max_bytes: usize,
    /// What `GET /amc/accounts` lists (`AMP_SIM_ACCOUNTS`, a JSON list of
    /// `{"accountId","accountName","marketplaceId"}`; default the guide's sample account).
    pub accounts: Vec<AmcAccount>,
    /// What `GET /amc/instances` lists (`AMP_SIM_INSTANCES`, a JSON list of objects with at
    /// least `instanceId`; default one sample instance, `amc-instance01`).
    pub instances: Vec<AmcInstance>,
    /// Advertiser (entity) ids answered 403 (`AMP_SIM_UNKNOWN_ADVERTISERS`, comma-separated;
    /// default none).
    pub unknown_advertisers: Vec<String>,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 8090)),
            client_id: "dev-client".to_owned(),
            client_secret: "dev-secret".to_owned(),
            run_duration: Duration::from_secs(2),
            token_ttl: Duration::from_secs(3600),
            max_running: 10,
            seed: 0,
            download_url_ttl: Duration::from_secs(600),
            parts: 1,
            expired_token_status: 401,
            unavailable_status: 404,
            faults: FaultPlan::default(),
            adhoc_max_bytes: DEFAULT_ADHOC_MAX_BYTES,
            accounts: fixtures::default_accounts(),
            instances: fixtures::default_instances(),
            unknown_advertisers: Vec::new(),
        }
    }
}

impl SimConfig {
    /// A configuration for tests: port 0 on localhost, otherwise the defaults.
    pub fn for_tests() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            ..Self::default()
        }
    }

    /// Reads the process environment; unset variables keep their defaults.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`SimConfig::from_env`], reading variables through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut cfg = Self::default();
        if let Some(v) = lookup("AMP_SIM_ADDR") {
            cfg.addr = v
                .trim()
                .parse()
                .map_err(|e| invalid("AMP_SIM_ADDR", &v, e))?;
        }
        if let Some(v) = lookup("AMP_LWA_CLIENT_ID") {
            cfg.client_id = non_empty("AMP_LWA_CLIENT_ID", v)?;
        }
        if let Some(v) = lookup("AMP_LWA_CLIENT_SECRET") {
            cfg.client_secret = non_empty("AMP_LWA_CLIENT_SECRET", v)?;
        }
        if let Some(v) = lookup("AMP_SIM_RUN_DURATION") {
            cfg.run_duration = duration("AMP_SIM_RUN_DURATION", &v)?;
        }
        if let Some(v) = lookup("AMP_SIM_TOKEN_TTL") {
            cfg.token_ttl = duration("AMP_SIM_TOKEN_TTL", &v)?;
        }
        if let Some(v) = lookup("AMP_SIM_MAX_RUNNING") {
            let n: usize = v
                .trim()
                .parse()
                .map_err(|e| invalid("AMP_SIM_MAX_RUNNING", &v, e))?;
            if n == 0 {
                return Err(invalid("AMP_SIM_MAX_RUNNING", &v, "must be at least 1"));
            }
            cfg.max_running = n;
        }
        if let Some(v) = lookup("AMP_SIM_SEED") {
            cfg.seed = v
                .trim()
                .parse()
                .map_err(|e| invalid("AMP_SIM_SEED", &v, e))?;
        }
        if let Some(v) = lookup("AMP_SIM_FAULTS") {
            let doc = crate::faults::FaultsDoc::parse(v.as_bytes())
                .map_err(|e| invalid("AMP_SIM_FAULTS", &v, e))?;
            cfg.faults = doc.plan;
            if let Some(status) = doc.expired_token_status {
                cfg.expired_token_status = status;
            }
            // AMP_SIM_SEED, when set, wins over a seed inside AMP_SIM_FAULTS.
            if let (Some(seed), None) = (doc.seed, lookup("AMP_SIM_SEED")) {
                cfg.seed = seed;
            }
        }
        if let Some(v) = lookup("AMP_SIM_DOWNLOAD_URL_TTL") {
            cfg.download_url_ttl = duration("AMP_SIM_DOWNLOAD_URL_TTL", &v)?;
        }
        if let Some(v) = lookup("AMP_SIM_ADHOC_MAX_BYTES") {
            cfg.adhoc_max_bytes = v
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| {
                    invalid(
                        "AMP_SIM_ADHOC_MAX_BYTES",
                        &v,
                        "must be a positive number of bytes",
                    )
                })?;
        }
        if let Some(v) = lookup("AMP_SIM_ACCOUNTS") {
            cfg.accounts = fixtures::parse_list(v.as_bytes(), "amcAccounts")
                .map_err(|e| invalid("AMP_SIM_ACCOUNTS", &v, e))?;
        }
        if let Some(v) = lookup("AMP_SIM_INSTANCES") {
            cfg.instances = fixtures::parse_list(v.as_bytes(), "instances")
                .map_err(|e| invalid("AMP_SIM_INSTANCES", &v, e))?;
        }
        if let Some(v) = lookup("AMP_SIM_UNKNOWN_ADVERTISERS") {
            cfg.unknown_advertisers = v
                .split(',')
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(str::to_owned)
                .collect();
        }
        Ok(cfg)
    }
}

fn invalid(var: &'static str, value: &str, reason: impl ToString) -> ConfigError {
    ConfigError {
        var,
        value: value.to_owned(),
        reason: reason.to_string(),
    }
}

fn non_empty(var: &'static str, v: String) -> Result<String, ConfigError> {
    if v.trim().is_empty() {
        Err(invalid(var, &v, "must not be empty"))
    } else {
        Ok(v)
    }
}

/// A human duration (`250ms`, `2s`, `10m`); a bare integer means seconds.
fn duration(var: &'static str, v: &str) -> Result<Duration, ConfigError> {
    let t = v.trim();
    if let Ok(secs) = t.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(t).map_err(|e| invalid(var, v, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(pairs: &[(&str, &str)]) -> Result<SimConfig, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        SimConfig::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_when_unset() {
        let cfg = load(&[]).expect("defaults");
        assert_eq!(cfg.addr.to_string(), "127.0.0.1:8090");
        assert_eq!(cfg.client_id, "dev-client");
        assert_eq!(cfg.client_secret, "dev-secret");
        assert_eq!(cfg.run_duration, Duration::from_secs(2));
        assert_eq!(cfg.token_ttl, Duration::from_secs(3600));
        assert_eq!(cfg.max_running, 10);
        assert_eq!(cfg.download_url_ttl, Duration::from_secs(600));
        assert_eq!(cfg.adhoc_max_bytes, 102_400);
        assert_eq!(cfg.accounts[0].account_id, "ENTITY1AA1AA11AAA1");
        assert_eq!(cfg.instances[0].instance_id, "amc-instance01");
        assert!(cfg.unknown_advertisers.is_empty());
    }

    #[test]
    fn reads_limits_and_fixtures() {
        let cfg = load(&[
            ("AMP_SIM_ADHOC_MAX_BYTES", "2048"),
            (
                "AMP_SIM_ACCOUNTS",
                r#"[{"accountId":"ENTITYX","accountName":"X"}]"#,
            ),
            (
                "AMP_SIM_INSTANCES",
                r#"{"instances":[{"instanceId":"amcx"}]}"#,
            ),
            ("AMP_SIM_UNKNOWN_ADVERTISERS", "ENTITYA, ENTITYB,"),
        ])
        .expect("valid");
        assert_eq!(cfg.adhoc_max_bytes, 2048);
        assert_eq!(cfg.accounts[0].account_name, "X");
        assert_eq!(cfg.instances[0].instance_id, "amcx");
        assert_eq!(cfg.unknown_advertisers, ["ENTITYA", "ENTITYB"]);
    }

    #[test]
    fn parses_human_durations() {
        let cfg = load(&[
            ("AMP_SIM_RUN_DURATION", "250ms"),
            ("AMP_SIM_TOKEN_TTL", "3600"),
            ("AMP_SIM_DOWNLOAD_URL_TTL", "10m"),
            ("AMP_SIM_SEED", "42"),
            ("AMP_SIM_MAX_RUNNING", "3"),
        ])
        .expect("valid");
        assert_eq!(cfg.run_duration, Duration::from_millis(250));
        assert_eq!(cfg.token_ttl, Duration::from_secs(3600));
        assert_eq!(cfg.download_url_ttl, Duration::from_secs(600));
        assert_eq!(cfg.seed, 42);
        assert_eq!(cfg.max_running, 3);
    }

    #[test]
    fn faults_from_env() {
        let doc = r#"{"seed": 5, "expired_token_status": 403, "rules": [
            {"route": "run", "probability": 0.2, "fault": {"kind": "failed"}}]}"#;
        let cfg = load(&[("AMP_SIM_FAULTS", doc)]).expect("valid");
        assert_eq!(cfg.seed, 5);
        assert_eq!(cfg.expired_token_status, 403);
        assert_eq!(cfg.faults.rules.len(), 1);
        let cfg = load(&[("AMP_SIM_FAULTS", doc), ("AMP_SIM_SEED", "8")]).expect("valid");
        assert_eq!(cfg.seed, 8);
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (var, value) in [
            ("AMP_SIM_ADDR", "nowhere"),
            ("AMP_SIM_RUN_DURATION", "soon"),
            ("AMP_SIM_MAX_RUNNING", "0"),
            ("AMP_SIM_SEED", "-1"),
            ("AMP_LWA_CLIENT_ID", " "),
            ("AMP_SIM_ADHOC_MAX_BYTES", "0"),
            ("AMP_SIM_ACCOUNTS", "{\"accounts\": []}"),
            ("AMP_SIM_INSTANCES", "[{\"instanceName\": \"x\"}]"),
            ("AMP_SIM_FAULTS", "{\"rules\": 3}"),
            (
                "AMP_SIM_FAULTS",
                "[{\"route\":\"get\",\"probability\":2,\"fault\":{\"kind\":\"gateway_timeout\"}}]",
            ),
        ] {
            let err = load(&[(var, value)]).expect_err(var);
            assert_eq!(err.var, var);
            assert!(err.to_string().contains(var), "{err}");
        }
    }
}
