//! Readiness of a process (`/readyz` of the API, a worker and the scheduler): Postgres and
//! Redis each answer within [`PROBE_TIMEOUT`], probed at once.

use sea_orm::{ConnectionTrait, DatabaseConnection};
use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

/// How long a dependency may take to answer before the process counts as not ready.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// What did not answer, and why.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Readiness {
    pub down: Vec<(&'static str, String)>,
}

impl Readiness {
    pub fn is_ready(&self) -> bool {
        self.down.is_empty()
    }

    /// Adds `name` as down for `why`.
    pub fn fail(&mut self, name: &'static str, why: impl Into<String>) {
        self.down.push((name, why.into()));
    }

    /// The names of what is down, e.g. `postgres, redis`.
    pub fn names(&self) -> String {
        let names: Vec<&str> = self.down.iter().map(|(n, _)| *n).collect();
        names.join(", ")
    }

    /// The JSON body: `{"status":"ready"}`, or `{"status":"unavailable","down":{name: why}}`.
    pub fn body(&self) -> serde_json::Value {
        if self.is_ready() {
            return serde_json::json!({ "status": "ready" });
        }
        let down: serde_json::Map<String, serde_json::Value> = self
            .down
            .iter()
            .map(|(n, why)| ((*n).to_owned(), why.clone().into()))
            .collect();
        serde_json::json!({ "status": "unavailable", "down": down })
    }

    /// Logs each dependency that is down (once per probe that found it so).
    pub fn log(&self) {
        for (name, why) in &self.down {
            tracing::warn!(dependency = name, error = %why, "readiness: not answering");
        }
    }
}

async fn within<E: Display>(probe: impl Future<Output = Result<(), E>>) -> Result<(), String> {
    match tokio::time::timeout(PROBE_TIMEOUT, probe).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {PROBE_TIMEOUT:?}")),
    }
}

/// Probes Postgres (`SELECT 1`) and Redis (`redis`, a PING) at once.
pub async fn probe<E: Display>(
    db: &DatabaseConnection,
    redis: impl Future<Output = Result<(), E>>,
) -> Readiness {
    let pg = async { db.execute_unprepared("SELECT 1").await.map(|_| ()) };
    let (pg, redis) = tokio::join!(within(pg), within(redis));
    let mut r = Readiness::default();
    if let Err(e) = pg {
        r.fail("postgres", e);
    }
    if let Err(e) = redis {
        r.fail("redis", e);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_probe_that_does_not_answer_in_time_is_down() {
        let slow = async {
            tokio::time::sleep(PROBE_TIMEOUT * 3).await;
            Ok::<(), String>(())
        };
        let started = std::time::Instant::now();
        assert!(within(slow).await.unwrap_err().contains("no answer"));
        assert!(started.elapsed() < PROBE_TIMEOUT * 2);
        assert_eq!(
            within(async { Err::<(), _>("refused") }).await,
            Err("refused".into())
        );
    }

    #[test]
    fn the_body_names_what_is_down() {
        let mut r = Readiness::default();
        assert_eq!(r.body(), serde_json::json!({"status": "ready"}));
        r.fail("redis", "refused");
        r.fail("consumers", "cannot consume");
        assert_eq!(r.names(), "redis, consumers");
        assert_eq!(r.body()["down"]["redis"], "refused");
        assert!(!r.is_ready());
    }
}
