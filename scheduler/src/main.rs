//! `scheduler`: the reconciler and periodic system duties. Run one or more replicas.

use common::config::Config;
use std::sync::Arc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let config = Arc::new(Config::load_or_exit());
    let _telemetry = common::telemetry::init(&config, "scheduler");
    config.warn_dev_fallbacks();
    let scheduler = scheduler::Scheduler::build(config.clone()).await?;
    if let Some(addr) = config.scheduler_health_addr {
        scheduler::health::serve(addr, &scheduler);
    }
    scheduler
        .run_until_stopped(common::shutdown::signal())
        .await;
    Ok(())
}
