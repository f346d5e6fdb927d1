//! Typed configuration, read once from the environment (`AMP_*`, CONTRACT.md).
//!
//! A missing or malformed value stops the process with a message naming the variable.
//! In development the secrets fall back to fixed, public development values (with a
//! warning) so that every process agrees; production refuses them.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

/// The fixed, public development JWT key. Never valid in production.
pub const DEV_JWT_SECRET: &str = "recomamp-development-jwt-secret-not-for-production";
/// The fixed, public development encryption key (32 bytes, base64). Never valid in production.
pub const DEV_ENCRYPTION_KEY: &str = "ZGV2LWVuY3J5cHRpb24ta2V5LW5vdC1mb3ItcHJvZCE=";
/// The default of `AMP_AMC_ADHOC_MAX_BYTES`: 100 KiB. An assumption: no public source
/// (AMC's guides, Amazon's sample notebook, the AWS solution) states AMC's limit on an ad
/// hoc `sqlQuery`; amc-sim refuses ad hoc SQL over the same default.
pub const DEFAULT_AMC_ADHOC_MAX_BYTES: usize = 102_400;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Env {
    Development,
    Production,
}

/// A configuration error: always names the variable.
#[derive(Debug, thiserror::Error)]
#[error("{var}: {message}")]
pub struct ConfigError {
    pub var: &'static str,
    pub message: String,
}

fn err(var: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        var,
        message: message.into(),
    }
}

/// A secret string that never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Every setting of every process. Each process uses the part it needs.
#[derive(Debug, Clone)]
pub struct Config {
    pub env: Env,
    pub database_url: String,
    pub redis_url: String,
    pub redis_prefix: String,
    pub api_addr: SocketAddr,
    pub sim_addr: SocketAddr,
    pub jwt_secret: Secret,
    /// The secret tokens were signed with before a rotation (`AMP_JWT_SECRET_PREVIOUS`):
    /// they stay valid until they expire.
    pub jwt_secret_previous: Option<Secret>,
    pub encryption_key: Secret,
    /// The key tokens and secrets were encrypted with before a rotation
    /// (`AMP_ENCRYPTION_KEY_PREVIOUS`): read with either while `migrate
    /// rotate-encryption-key` re-encrypts them.
    pub encryption_key_previous: Option<Secret>,
    /// `None` in production: each account's region picks Amazon's host.
    pub amc_base_url: Option<String>,
    pub lwa_token_url: Option<String>,
    pub lwa_client_id: String,
    pub lwa_client_secret: Secret,
    pub results_url: String,
    pub worker_concurrency: usize,
    /// Runtime threads of a worker process; `None`: one per CPU core.
    pub worker_threads: Option<usize>,
    pub worker_health_addr: Option<SocketAddr>,
    /// Where the scheduler serves `/healthz` and `/metrics` (off when unset).
    pub scheduler_health_addr: Option<SocketAddr>,
    pub poll_min: Duration,
    pub poll_max: Duration,
    pub reconcile_interval: Duration,
    /// How often the scheduler refreshes the shared-state gauges (`AMP_METRICS_INTERVAL`).
    pub metrics_interval: Duration,
    /// Events (and finished job data) older than this are pruned.
    pub event_retention: Duration,
    /// How often the scheduler prunes (and removes results past their retention).
    pub prune_interval: Duration,
    /// Stored results older than this (since their run succeeded) are removed
    /// (`AMP_RESULTS_RETENTION`; unset or `off`: kept for ever).
    pub results_retention: Option<Duration>,
    /// The largest rendered query sent ad hoc, in bytes (`AMP_AMC_ADHOC_MAX_BYTES`); a
    /// bigger one runs through a saved workflow. No public source states AMC's limit: the
    /// default, [`DEFAULT_AMC_ADHOC_MAX_BYTES`], is an assumption (amc-sim's own default).
    pub amc_adhoc_max_bytes: usize,
    /// How long a saved workflow no run needs any more is kept at AMC before the scheduler
    /// deletes it (`AMP_AMC_SAVED_WORKFLOW_GRACE`).
    pub saved_workflow_grace: Duration,
    /// The most windows one collection may have (`AMP_COLLECTION_MAX_WINDOWS`).
    pub collection_max_windows: usize,
    /// How far back a collection may start (`AMP_COLLECTION_MAX_LOOKBACK`; AMC keeps about
    /// three years of data).
    pub collection_max_lookback: Duration,
    /// Delays after each failed webhook attempt (`AMP_WEBHOOK_RETRY_SCHEDULE`).
    pub webhook_retry_schedule: Vec<Duration>,
    /// One webhook attempt's timeout (`AMP_WEBHOOK_TIMEOUT`).
    pub webhook_timeout: Duration,
    /// An endpoint failing this long with no success is disabled
    /// (`AMP_WEBHOOK_DISABLE_AFTER`).
    pub webhook_disable_after: Duration,
    /// Whether webhook URLs may reach private, loopback and link-local addresses
    /// (`AMP_WEBHOOK_ALLOW_PRIVATE`).
    pub webhook_allow_private: bool,
    /// The most Postgres connections this process's pool opens
    /// (`AMP_DATABASE_MAX_CONNECTIONS`; unset: each process's own default).
    pub database_max_connections: Option<u32>,
    pub shutdown_timeout: Duration,
    /// How long a queue consumer's unacknowledged job may sit before another worker takes it.
    pub claim_idle: Duration,
    pub max_attempts: u32,
    /// Handler failures of one job (our own errors: database, queue, result store) after
    /// which the queue gives up and the job goes to `dead_jobs` (`AMP_JOB_MAX_ATTEMPTS`;
    /// default each job kind's own, 25, about 20 minutes of back-off).
    pub job_max_attempts: Option<u32>,
    /// Timeout of one AMC or LWA request. A step's lease on its row is longer than this,
    /// so a crashed step's request is over before another worker takes the row.
    pub amc_timeout: Duration,
    pub access_token_ttl: Duration,
    /// Password hashes (login, registration) computed at once by one API process.
    pub login_concurrency: usize,
    /// Login attempts allowed per client IP, and failed ones per email.
    pub login_limit_ip: RateLimit,
    pub login_limit_email: RateLimit,
    /// Take the client IP from the first `X-Forwarded-For` address (behind a proxy).
    pub trust_forwarded_for: bool,
    pub otel_endpoint: Option<String>,
    /// Names of secrets that fell back to their development values.
    pub dev_fallbacks: Vec<&'static str>,
}

/// At most `max` events per `window` (a fixed window), written `N/duration` (`10/15m`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub max: u32,
    pub window: Duration,
}

impl std::str::FromStr for RateLimit {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("`{s}` is not a rate like 10/15m (a count, a slash, a duration)");
        let (n, d) = s.trim().split_once('/').ok_or_else(bad)?;
        let max: u32 = n.trim().parse().map_err(|_| bad())?;
        let window = parse_duration(d).map_err(|_| bad())?;
        if max == 0 || window < Duration::from_secs(1) {
            return Err(format!(
                "`{s}`: the count must be at least 1 and the window at least 1s"
            ));
        }
        Ok(Self { max, window })
    }
}

/// Parses a human duration: `250ms`, `15s`, `5m`, `1h`, or combinations like `1m30s`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("`{s}` is not a duration ({e}); use forms like 250ms, 15s, 5m, 1h"))
}

/// A comma-separated list of durations (`5s,5m,30m`), each more than zero.
pub fn parse_schedule(s: &str) -> Result<Vec<Duration>, String> {
    let out: Vec<Duration> = s
        .split(',')
        .map(|d| parse_duration(d.trim()))
        .collect::<Result<_, _>>()?;
    if out.is_empty() || out.iter().any(Duration::is_zero) {
        return Err(format!(
            "`{s}` must list one or more durations above zero, such as 5s,5m,30m"
        ));
    }
    Ok(out)
}

/// A duration in the form [`parse_duration`] reads, in its largest whole unit (`24h`,
/// `90m`, `15s`, `250ms`).
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    match ms {
        0 => "0s".into(),
        _ if ms.is_multiple_of(3_600_000) => format!("{}h", ms / 3_600_000),
        _ if ms.is_multiple_of(60_000) => format!("{}m", ms / 60_000),
        _ if ms.is_multiple_of(1_000) => format!("{}s", ms / 1_000),
        _ => format!("{ms}ms"),
    }
}

impl Config {
    /// The cipher of tokens and secrets at rest: the current key, and the previous one
    /// (read only) while a rotation is under way.
    pub fn cipher(&self) -> Result<crate::crypto::Cipher, crate::crypto::CryptoError> {
        let c = crate::crypto::Cipher::from_base64_key(self.encryption_key.expose())?;
        match &self.encryption_key_previous {
            Some(p) => Ok(c.with_previous(crate::crypto::Cipher::from_base64_key(p.expose())?)),
            None => Ok(c),
        }
    }

    /// The size of this process's Postgres pool: `AMP_DATABASE_MAX_CONNECTIONS`, or
    /// `default` (each process's own).
    pub fn pool_size(&self, default: u32) -> u32 {
        self.database_max_connections.unwrap_or(default)
    }

    /// Whether this is a production deployment (`AMP_ENV=production`).
    pub fn is_production(&self) -> bool {
        self.env == Env::Production
    }

    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_map(&std::env::vars().collect())
    }

    /// Reads configuration from a map (the environment, or a test's own values).
    pub fn from_map(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let get = |k: &str| {
            vars.get(k)
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
        };
        let env = match get("AMP_ENV").as_deref() {
            None | Some("development") => Env::Development,
            Some("production") => Env::Production,
            Some(other) => {
                return Err(err(
                    "AMP_ENV",
                    format!("`{other}` is not `development` or `production`"),
                ));
            }
        };
        let prod = env == Env::Production;
        let dur = |k: &'static str, dev: &str, production: &str| -> Result<Duration, ConfigError> {
            match get(k) {
                Some(v) => parse_duration(&v).map_err(|m| err(k, m)),
                None => parse_duration(if prod { production } else { dev }).map_err(|m| err(k, m)),
            }
        };
        let at_least =
            |k: &'static str, d: Duration, min: Duration| -> Result<Duration, ConfigError> {
                if d < min {
                    return Err(err(k, format!("must be at least {}", format_duration(min))));
                }
                Ok(d)
            };
        let addr = |k: &'static str, dev: &str| -> Result<SocketAddr, ConfigError> {
            let v = get(k).unwrap_or_else(|| dev.to_string());
            v.parse().map_err(|_| {
                err(
                    k,
                    format!("`{v}` is not a socket address like 127.0.0.1:8080"),
                )
            })
        };
        let mut dev_fallbacks = Vec::new();
        let mut secret = |k: &'static str, dev: &str| -> Result<Secret, ConfigError> {
            match get(k) {
                Some(v) if prod && v == dev => Err(err(
                    k,
                    "is still the public development value; production needs a real secret",
                )),
                Some(v) => Ok(Secret(v)),
                None if prod => Err(err(k, "must be set in production")),
                None => {
                    dev_fallbacks.push(k);
                    Ok(Secret(dev.to_string()))
                }
            }
        };
        let jwt_secret = secret("AMP_JWT_SECRET", DEV_JWT_SECRET)?;
        if jwt_secret.expose().len() < 32 {
            return Err(err("AMP_JWT_SECRET", "must be at least 32 characters"));
        }
        let jwt_secret_previous = match get("AMP_JWT_SECRET_PREVIOUS") {
            None => None,
            Some(v) if v.len() < 32 => {
                return Err(err(
                    "AMP_JWT_SECRET_PREVIOUS",
                    "must be at least 32 characters",
                ));
            }
            Some(v) => Some(Secret(v)),
        };
        let encryption_key = secret("AMP_ENCRYPTION_KEY", DEV_ENCRYPTION_KEY)?;
        crate::crypto::Cipher::from_base64_key(encryption_key.expose())
            .map_err(|e| err("AMP_ENCRYPTION_KEY", e.to_string()))?;
        let encryption_key_previous = match get("AMP_ENCRYPTION_KEY_PREVIOUS") {
            None => None,
            Some(v) => {
                crate::crypto::Cipher::from_base64_key(&v)
                    .map_err(|e| err("AMP_ENCRYPTION_KEY_PREVIOUS", e.to_string()))?;
                Some(Secret(v))
            }
        };
        let lwa_client_secret = secret("AMP_LWA_CLIENT_SECRET", "dev-secret")?;
        let lwa_client_id = match get("AMP_LWA_CLIENT_ID") {
            Some(v) => v,
            None if prod => return Err(err("AMP_LWA_CLIENT_ID", "must be set in production")),
            None => "dev-client".to_string(),
        };
        let url_var = |k: &'static str, dev: &str| -> Result<Option<String>, ConfigError> {
            let v = match get(k) {
                Some(v) => v,
                None if prod => return Ok(None),
                None => dev.to_string(),
            };
            url::Url::parse(&v).map_err(|e| err(k, format!("`{v}` is not a URL ({e})")))?;
            Ok(Some(v.trim_end_matches('/').to_string()))
        };
        let amc_base_url = url_var("AMP_AMC_BASE_URL", "http://127.0.0.1:8090")?;
        let lwa_token_url = url_var("AMP_LWA_TOKEN_URL", "http://127.0.0.1:8090/auth/o2/token")?;
        let database_url = get("AMP_DATABASE_URL")
            .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/amp".into());
        if !(database_url.starts_with("postgres://") || database_url.starts_with("postgresql://")) {
            return Err(err("AMP_DATABASE_URL", "must be a postgres:// URL"));
        }
        let redis_url = get("AMP_REDIS_URL").unwrap_or_else(|| "redis://127.0.0.1:6379".into());
        if !(redis_url.starts_with("redis://") || redis_url.starts_with("rediss://")) {
            return Err(err("AMP_REDIS_URL", "must be a redis:// or rediss:// URL"));
        }
        let redis_prefix = get("AMP_REDIS_PREFIX").unwrap_or_else(|| "amp".into());
        if redis_prefix.contains(char::is_whitespace) {
            return Err(err("AMP_REDIS_PREFIX", "must not contain white space"));
        }
        let positive = |k: &'static str, default: u64| -> Result<u64, ConfigError> {
            match get(k) {
                None => Ok(default),
                Some(v) => match v.parse::<u64>() {
                    Ok(n) if n > 0 => Ok(n),
                    _ => Err(err(k, format!("`{v}` is not a positive whole number"))),
                },
            }
        };
        let poll_min = dur("AMP_POLL_MIN", "1s", "15s")?;
        let poll_max = dur("AMP_POLL_MAX", "10s", "5m")?;
        if poll_max < poll_min {
            return Err(err("AMP_POLL_MAX", "must not be shorter than AMP_POLL_MIN"));
        }
        let optional_addr = |k: &'static str| -> Result<Option<SocketAddr>, ConfigError> {
            match get(k) {
                None => Ok(None),
                Some(v) => v
                    .parse()
                    .map(Some)
                    .map_err(|_| err(k, format!("`{v}` is not a socket address"))),
            }
        };
        let worker_health_addr = optional_addr("AMP_WORKER_HEALTH_ADDR")?;
        let scheduler_health_addr = optional_addr("AMP_SCHEDULER_HEALTH_ADDR")?;
        let rate = |k: &'static str, dev: &str| -> Result<RateLimit, ConfigError> {
            get(k)
                .unwrap_or_else(|| dev.to_string())
                .parse()
                .map_err(|m| err(k, m))
        };
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let flag = |k: &'static str, default: bool| -> Result<bool, ConfigError> {
            match get(k).as_deref() {
                None => Ok(default),
                Some("false") | Some("0") => Ok(false),
                Some("true") | Some("1") => Ok(true),
                Some(other) => Err(err(k, format!("`{other}` is not `true` or `false`"))),
            }
        };
        let trust_forwarded_for = flag("AMP_TRUST_FORWARDED_FOR", false)?;
        let webhook_retry_schedule = match get("AMP_WEBHOOK_RETRY_SCHEDULE") {
            None => parse_schedule("5s,5m,30m,2h,5h,10h,10h"),
            Some(v) => parse_schedule(&v),
        }
        .map_err(|m| err("AMP_WEBHOOK_RETRY_SCHEDULE", m))?;
        Ok(Config {
            env,
            database_url,
            redis_url,
            redis_prefix,
            api_addr: addr("AMP_API_ADDR", "127.0.0.1:8080")?,
            sim_addr: addr("AMP_SIM_ADDR", "127.0.0.1:8090")?,
            jwt_secret,
            jwt_secret_previous,
            encryption_key_previous,
            encryption_key,
            amc_base_url,
            lwa_token_url,
            lwa_client_id,
            lwa_client_secret,
            results_url: get("AMP_RESULTS_URL").unwrap_or_else(|| "./data/results".into()),
            worker_concurrency: positive("AMP_WORKER_CONCURRENCY", 64)? as usize,
            worker_threads: match get("AMP_WORKER_THREADS") {
                None => None,
                Some(_) => Some(positive("AMP_WORKER_THREADS", 1)? as usize),
            },
            worker_health_addr,
            scheduler_health_addr,
            poll_min,
            poll_max,
            reconcile_interval: dur("AMP_RECONCILE_INTERVAL", "5s", "5s")?,
            metrics_interval: at_least(
                "AMP_METRICS_INTERVAL",
                dur("AMP_METRICS_INTERVAL", "15s", "15s")?,
                Duration::from_millis(100),
            )?,
            event_retention: at_least(
                "AMP_EVENT_RETENTION",
                dur("AMP_EVENT_RETENTION", "90d", "90d")?,
                Duration::from_secs(60),
            )?,
            prune_interval: at_least(
                "AMP_PRUNE_INTERVAL",
                dur("AMP_PRUNE_INTERVAL", "1h", "1h")?,
                Duration::from_secs(1),
            )?,
            results_retention: match get("AMP_RESULTS_RETENTION") {
                None => None,
                Some(v) if v.eq_ignore_ascii_case("off") => None,
                Some(v) => Some(at_least(
                    "AMP_RESULTS_RETENTION",
                    parse_duration(&v).map_err(|m| err("AMP_RESULTS_RETENTION", m))?,
                    Duration::from_secs(1),
                )?),
            },
            collection_max_windows: positive("AMP_COLLECTION_MAX_WINDOWS", 520)? as usize,
            amc_adhoc_max_bytes: positive(
                "AMP_AMC_ADHOC_MAX_BYTES",
                DEFAULT_AMC_ADHOC_MAX_BYTES as u64,
            )? as usize,
            saved_workflow_grace: at_least(
                "AMP_AMC_SAVED_WORKFLOW_GRACE",
                dur("AMP_AMC_SAVED_WORKFLOW_GRACE", "1h", "1h")?,
                Duration::from_secs(1),
            )?,
            webhook_retry_schedule,
            webhook_timeout: at_least(
                "AMP_WEBHOOK_TIMEOUT",
                dur("AMP_WEBHOOK_TIMEOUT", "15s", "15s")?,
                Duration::from_millis(100),
            )?,
            webhook_disable_after: at_least(
                "AMP_WEBHOOK_DISABLE_AFTER",
                dur("AMP_WEBHOOK_DISABLE_AFTER", "5d", "5d")?,
                Duration::from_secs(1),
            )?,
            webhook_allow_private: flag("AMP_WEBHOOK_ALLOW_PRIVATE", !prod)?,
            database_max_connections: match get("AMP_DATABASE_MAX_CONNECTIONS") {
                None => None,
                Some(_) => Some(positive("AMP_DATABASE_MAX_CONNECTIONS", 10)? as u32),
            },
            collection_max_lookback: at_least(
                "AMP_COLLECTION_MAX_LOOKBACK",
                dur("AMP_COLLECTION_MAX_LOOKBACK", "1100d", "1100d")?,
                Duration::from_secs(86_400),
            )?,
            shutdown_timeout: dur("AMP_SHUTDOWN_TIMEOUT", "30s", "30s")?,
            claim_idle: dur("AMP_CLAIM_IDLE", "5s", "15s")?,
            max_attempts: positive("AMP_MAX_ATTEMPTS", 8)? as u32,
            job_max_attempts: match get("AMP_JOB_MAX_ATTEMPTS") {
                None => None,
                Some(_) => Some(positive("AMP_JOB_MAX_ATTEMPTS", 25)?.min(1000) as u32),
            },
            amc_timeout: dur("AMP_AMC_TIMEOUT", "30s", "30s")?,
            access_token_ttl: dur("AMP_ACCESS_TOKEN_TTL", "15m", "15m")?,
            login_concurrency: positive("AMP_LOGIN_CONCURRENCY", (cores as u64 / 2).max(1))?
                as usize,
            login_limit_ip: rate("AMP_LOGIN_RATE_LIMIT_IP", "30/1m")?,
            login_limit_email: rate("AMP_LOGIN_RATE_LIMIT_EMAIL", "10/15m")?,
            trust_forwarded_for,
            otel_endpoint: get("OTEL_EXPORTER_OTLP_ENDPOINT"),
            dev_fallbacks,
        })
    }

    /// Logs a warning for every secret that fell back to its public development value.
    pub fn warn_dev_fallbacks(&self) {
        for var in &self.dev_fallbacks {
            tracing::warn!(
                variable = var,
                "using the public development value; set it before going to production"
            );
        }
    }

    /// Loads the config or exits the process with a message naming the variable.
    pub fn load_or_exit() -> Self {
        match Self::from_env() {
            Ok(c) => c,
            Err(e) => {
                eprintln!("configuration error: {e}");
                std::process::exit(2);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn durations_are_written_as_they_are_read() {
        for (d, text) in [
            (86_400_000, "24h"),
            (5_400_000, "90m"),
            (15_000, "15s"),
            (250, "250ms"),
            (0, "0s"),
        ] {
            let d = Duration::from_millis(d);
            assert_eq!(format_duration(d), text);
            assert_eq!(parse_duration(text).unwrap(), d);
        }
    }

    #[test]
    fn development_defaults_fall_back_with_names() {
        let c = Config::from_map(&vars(&[])).expect("dev config");
        assert_eq!(c.env, Env::Development);
        assert_eq!(c.poll_min, Duration::from_secs(1));
        assert_eq!(c.redis_prefix, "amp");
        assert!(c.dev_fallbacks.contains(&"AMP_JWT_SECRET"));
        assert!(c.dev_fallbacks.contains(&"AMP_ENCRYPTION_KEY"));
    }

    #[test]
    fn production_refuses_missing_and_development_secrets() {
        let e = Config::from_map(&vars(&[("AMP_ENV", "production")])).unwrap_err();
        assert_eq!(e.var, "AMP_JWT_SECRET");
        let e = Config::from_map(&vars(&[
            ("AMP_ENV", "production"),
            ("AMP_JWT_SECRET", DEV_JWT_SECRET),
        ]))
        .unwrap_err();
        assert_eq!(e.var, "AMP_JWT_SECRET");
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (k, v) in [
            ("AMP_POLL_MIN", "soon"),
            ("AMP_API_ADDR", "nowhere"),
            ("AMP_SCHEDULER_HEALTH_ADDR", "port 80"),
            ("AMP_WORKER_CONCURRENCY", "0"),
            ("AMP_WORKER_THREADS", "two"),
            ("AMP_ENCRYPTION_KEY", "c2hvcnQ="),
            ("AMP_JWT_SECRET", "short"),
            ("AMP_DATABASE_URL", "mysql://x"),
            ("AMP_ENV", "staging"),
            ("AMP_LOGIN_RATE_LIMIT_IP", "10"),
            ("AMP_LOGIN_RATE_LIMIT_EMAIL", "0/1m"),
            ("AMP_LOGIN_CONCURRENCY", "0"),
            ("AMP_TRUST_FORWARDED_FOR", "maybe"),
            ("AMP_WEBHOOK_RETRY_SCHEDULE", "5s,,1m"),
            ("AMP_WEBHOOK_RETRY_SCHEDULE", "0s"),
            ("AMP_WEBHOOK_TIMEOUT", "soon"),
            ("AMP_WEBHOOK_DISABLE_AFTER", "0s"),
            ("AMP_WEBHOOK_ALLOW_PRIVATE", "perhaps"),
            ("AMP_COLLECTION_MAX_WINDOWS", "0"),
            ("AMP_COLLECTION_MAX_LOOKBACK", "1h"),
            ("AMP_DATABASE_MAX_CONNECTIONS", "0"),
            ("AMP_JWT_SECRET_PREVIOUS", "short"),
            ("AMP_ENCRYPTION_KEY_PREVIOUS", "not base64 !"),
            ("AMP_RESULTS_RETENTION", "a while"),
            ("AMP_RESULTS_RETENTION", "500ms"),
            ("AMP_AMC_ADHOC_MAX_BYTES", "0"),
            ("AMP_AMC_ADHOC_MAX_BYTES", "100KB"),
            ("AMP_AMC_ADHOC_MAX_BYTES", "-1"),
            ("AMP_AMC_SAVED_WORKFLOW_GRACE", "later"),
            ("AMP_AMC_SAVED_WORKFLOW_GRACE", "0s"),
        ] {
            let e = Config::from_map(&vars(&[(k, v)])).unwrap_err();
            assert_eq!(e.var, k, "{k}={v}");
            assert!(e.to_string().starts_with(k));
        }
    }

    #[test]
    fn results_retention_is_off_unless_set() {
        let retention = |v: Option<&str>| {
            let pairs: Vec<_> = v
                .map(|v| ("AMP_RESULTS_RETENTION", v))
                .into_iter()
                .collect();
            Config::from_map(&vars(&pairs)).unwrap().results_retention
        };
        assert_eq!(retention(None), None);
        assert_eq!(retention(Some("off")), None);
        assert_eq!(retention(Some("OFF")), None);
        assert_eq!(
            retention(Some("30d")),
            Some(Duration::from_secs(30 * 86_400))
        );
        assert_eq!(retention(Some("2s")), Some(Duration::from_secs(2)));
    }

    #[test]
    fn the_ad_hoc_limit_and_the_saved_workflow_grace() {
        let c = Config::from_map(&vars(&[])).unwrap();
        assert_eq!(c.amc_adhoc_max_bytes, 102_400);
        assert_eq!(c.saved_workflow_grace, Duration::from_secs(3600));
        let c = Config::from_map(&vars(&[
            ("AMP_AMC_ADHOC_MAX_BYTES", "2048"),
            ("AMP_AMC_SAVED_WORKFLOW_GRACE", "2s"),
        ]))
        .unwrap();
        assert_eq!(c.amc_adhoc_max_bytes, 2048);
        assert_eq!(c.saved_workflow_grace, Duration::from_secs(2));
    }

    #[test]
    fn rates_read_count_and_window() {
        let r: RateLimit = "10/15m".parse().unwrap();
        assert_eq!((r.max, r.window), (10, Duration::from_secs(900)));
        assert!("10".parse::<RateLimit>().is_err());
        assert!("x/1m".parse::<RateLimit>().is_err());
        assert!("5/100ms".parse::<RateLimit>().is_err());
    }

    #[test]
    fn durations_accept_the_human_form() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert!(parse_duration("5 parsecs").is_err());
    }
}
