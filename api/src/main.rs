//! The `api` binary: serves the RecomAMP Engine HTTP API until SIGTERM or Ctrl-C.

use common::config::Config;
use std::sync::Arc;

// Each request allocates many small, short-lived buffers (JSON trees, strings, rows);
// under load glibc's malloc took about a fifth of the API's CPU.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let config = Arc::new(Config::load_or_exit());
    let _telemetry = common::telemetry::init(&config, "api");
    config.warn_dev_fallbacks();
    let app = api::build(config).await?;
    app.run_until_stopped(common::shutdown::signal()).await
}
