//! The `amc-sim` binary: serves the AMC + LWA simulator configured from the environment.

use anyhow::Context;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let cfg = match amc_sim::SimConfig::from_env() {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("amc-sim: configuration error: {e}");
            std::process::exit(2);
        }
    };
    let handle = amc_sim::spawn(cfg.clone()).await?;
    tracing::info!(
        addr = %handle.addr,
        base_url = %handle.base_url(),
        token_url = %handle.token_url(),
        run_duration_ms = cfg.run_duration.as_millis() as u64,
        max_running = cfg.max_running,
        "amc-sim listening"
    );
    let reason = stop_signal().await?;
    tracing::info!(signal = reason, "amc-sim stopping");
    handle.shutdown().await.context("shutting down amc-sim")?;
    Ok(())
}

/// Waits for Ctrl-C or SIGTERM and names which arrived.
async fn stop_signal() -> anyhow::Result<&'static str> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => {
            r.context("waiting for Ctrl-C")?;
            Ok("SIGINT")
        }
        _ = term.recv() => Ok("SIGTERM"),
    }
}
