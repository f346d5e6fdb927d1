//! What every job handler shares: config, database, producer, AMC client, cipher, results.

use common::amc::AmcClient;
use common::config::Config;
use common::crypto::Cipher;
use common::results::ResultStore;
use queue::Producer;
use sea_orm::DatabaseConnection;
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone)]
pub struct Ctx {
    pub config: Arc<Config>,
    pub db: DatabaseConnection,
    pub producer: Producer,
    pub amc: AmcClient,
    pub lwa: common::amc::LwaClient,
    pub cipher: Arc<Cipher>,
    pub results: ResultStore,
    /// Admission passes per account in this process (a burst of runs coalesces).
    pub admissions: Arc<common::coalesce::Coalescer<common::ids::AccountId>>,
    /// Admitted runs on their way to AMC from this process (handed back at a hard stop).
    pub sending: crate::sending::Sending,
    /// Cancelled when the process starts to stop: long loops (admission) end early.
    pub stopping: tokio_util::sync::CancellationToken,
    /// Group commits of status checks and reschedules.
    pub steps: crate::steps::Steps,
    /// The webhook client and per-endpoint gates.
    pub hooks: crate::hooks::Hooks,
    /// Group commit of the 2xx attempts that end together.
    pub delivered: crate::hooks::Delivered,
    /// The job series, and the registry `/metrics` renders.
    pub metrics: Arc<common::telemetry::metrics::JobMetrics>,
    pub registry: Arc<prometheus_client::registry::Registry>,
}

impl Ctx {
    /// How long a step holds its row: longer than one AMC request can take, so a crashed
    /// step's request is over before the reconciler hands the row to another worker.
    pub fn step_lease(&self) -> Duration {
        step_lease(&self.config)
    }
}

/// [`Ctx::step_lease`] of a config.
pub fn step_lease(config: &common::config::Config) -> Duration {
    config.amc_timeout + Duration::from_secs(5)
}
