//! amc-sim: an in-memory simulator of the Amazon Marketing Cloud reporting API and the
//! Login with Amazon token endpoint, with an admin API for tests (see `amc-api.md` §8 and
//! this crate's README, which lists every fidelity rule with its public source).

pub mod clock;
pub mod config;
pub mod faults;
pub mod fixtures;
pub mod results;
mod routes;
mod state;
mod validate;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use poem::Server;
use poem::listener::TcpAcceptor;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{ConfigError, SimConfig};
pub use results::expected_rows;

/// A running simulator. Dropping the handle leaves it running until the runtime stops;
/// call [`SimHandle::shutdown`] to stop it.
#[derive(Debug)]
pub struct SimHandle {
    /// The address it listens on.
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
    sim: Arc<state::Sim>,
}

impl SimHandle {
    /// `http://127.0.0.1:PORT` (the AMC API base).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The LWA token endpoint: base URL + `/auth/o2/token`.
    pub fn token_url(&self) -> String {
        format!("{}/auth/o2/token", self.base_url())
    }

    /// Stops accepting connections, releases held answers and waits for the server to end.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.sim.release_held();
        self.task
            .await
            .context("simulator task panicked")?
            .context("simulator server failed")
    }
}

/// Binds `cfg.addr` (port 0 allowed) and serves in a background task on the system clock.
pub async fn spawn(cfg: SimConfig) -> anyhow::Result<SimHandle> {
    spawn_with_clock(cfg, Arc::new(SystemClock)).await
}

/// Like [`spawn`], with an injected clock (e.g. a [`ManualClock`]).
pub async fn spawn_with_clock(cfg: SimConfig, clock: Arc<dyn Clock>) -> anyhow::Result<SimHandle> {
    let listener = tokio::net::TcpListener::bind(cfg.addr)
        .await
        .with_context(|| format!("binding amc-sim to {}", cfg.addr))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    let acceptor = TcpAcceptor::from_tokio(listener).context("wrapping the listener")?;
    let base_url = format!("http://{addr}");
    let sim = Arc::new(state::Sim::new(cfg, clock, base_url));
    let app = routes::app(Arc::clone(&sim));
    let (stop, stopped) = oneshot::channel::<()>();
    let signal = async move {
        // A dropped sender means "never stop on request".
        if stopped.await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let task = tokio::spawn(async move {
        Server::new_with_acceptor(acceptor)
            .run_with_graceful_shutdown(app, signal, Some(Duration::from_secs(5)))
            .await
    });
    Ok(SimHandle {
        addr,
        stop: Some(stop),
        task,
        sim,
    })
}
