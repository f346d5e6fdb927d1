//! What webhook delivery needs in a worker process: an HTTP client that never follows a
//! redirect and checks every address it connects to (unless private addresses are
//! allowed), and a gate per endpoint so that a slow or dead endpoint holds at most a
//! share of this process's job slots and never delays deliveries to any other.

use common::group::{BatchLimits, Call, Group};
use common::ids::{DeliveryId, EndpointId};
use common::webhook::address::is_public;
use common::webhook::delivery::{self, Attempt, Work};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use sea_orm::DatabaseConnection;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Attempts in flight per endpoint in one worker process, as a share of the queue's
/// concurrency (a quarter, from 2 to 16): a slow endpoint never holds most job slots.
pub fn per_endpoint(concurrency: usize) -> usize {
    (concurrency / 4).clamp(2, 16)
}

/// How long an attempt waits for its endpoint's slot before giving its job slot back.
const SLOT_WAIT: Duration = Duration::from_millis(200);
/// An endpoint whose slots are all taken and none came back for this long is slow: its
/// deliveries wait elsewhere at once instead of holding job slots.
const SLOW_AFTER: Duration = Duration::from_secs(1);

/// Resolves names as the system does, keeping only public addresses (a name that
/// resolves to private ones only is refused: no rebinding past the check).
struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = all.into_iter().filter(|a| is_public(a.ip())).collect();
            if public.is_empty() {
                return Err(format!(
                    "{host} resolves only to private, loopback or link-local addresses"
                )
                .into());
            }
            let addrs: Addrs = Box::new(public.into_iter());
            Ok(addrs)
        })
    }
}

/// One endpoint's slots, and when one last came back.
struct Gate {
    slots: Arc<Semaphore>,
    last_release: Mutex<Instant>,
}

/// A slot of an endpoint's gate, held for one attempt.
pub struct Slot {
    _permit: OwnedSemaphorePermit,
    gate: Arc<Gate>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        *self
            .gate
            .last_release
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }
}

/// The client and the gates.
#[derive(Clone)]
pub struct Hooks {
    pub client: reqwest::Client,
    /// Whether private addresses may be reached (`AMP_WEBHOOK_ALLOW_PRIVATE`).
    pub allow_private: bool,
    per_endpoint: usize,
    gates: Arc<Mutex<HashMap<EndpointId, Arc<Gate>>>>,
}

impl Hooks {
    pub fn new(timeout: Duration, allow_private: bool, concurrency: usize) -> anyhow::Result<Self> {
        let per_endpoint = per_endpoint(concurrency);
        let mut b = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!(
                "RecomAMP-Engine-Webhooks/",
                env!("CARGO_PKG_VERSION")
            ))
            .pool_max_idle_per_host(per_endpoint);
        if !allow_private {
            b = b.dns_resolver(PublicOnly);
        }
        Ok(Self {
            client: b.build()?,
            allow_private,
            per_endpoint,
            gates: Default::default(),
        })
    }

    /// A slot of `endpoint`'s gate: waits up to [`SLOT_WAIT`] for one (a fast endpoint's
    /// come back within milliseconds); `None` when none came, or at once when the
    /// endpoint is slow (every slot taken and none back for [`SLOW_AFTER`]).
    pub async fn enter(&self, endpoint: EndpointId) -> Option<Slot> {
        let gate = {
            let mut gates = self.gates.lock().unwrap_or_else(|e| e.into_inner());
            // Idle gates are dropped when the map grows, so it stays bounded.
            if gates.len() > 10_000 {
                let full = self.per_endpoint;
                gates.retain(|_, g| g.slots.available_permits() < full);
            }
            gates
                .entry(endpoint)
                .or_insert_with(|| {
                    Arc::new(Gate {
                        slots: Arc::new(Semaphore::new(self.per_endpoint)),
                        last_release: Mutex::new(Instant::now()),
                    })
                })
                .clone()
        };
        if let Ok(p) = gate.slots.clone().try_acquire_owned() {
            return Some(Slot { _permit: p, gate });
        }
        let since = gate
            .last_release
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .elapsed();
        if since > SLOW_AFTER {
            return None;
        }
        match tokio::time::timeout(SLOT_WAIT, gate.slots.clone().acquire_owned()).await {
            Ok(Ok(p)) => Some(Slot { _permit: p, gate }),
            _ => None,
        }
    }

    /// Whether `url` may be sent to: a literal IP must be public unless private addresses
    /// are allowed (names are checked by the resolver at connection time).
    pub fn allowed(&self, url: &url::Url) -> Result<(), String> {
        if self.allow_private {
            return Ok(());
        }
        let ip = match url.host() {
            Some(url::Host::Ipv4(ip)) => Some(std::net::IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(std::net::IpAddr::V6(ip)),
            _ => None,
        };
        match ip {
            Some(ip) if !is_public(ip) => Err(format!(
                "{ip} is a private, loopback or link-local address (AMP_WEBHOOK_ALLOW_PRIVATE is off)"
            )),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_gate_admits_a_share_per_endpoint() {
        let h = Hooks::new(Duration::from_secs(1), false, 16).unwrap();
        assert_eq!(per_endpoint(16), 4);
        let (a, b) = (EndpointId::new(), EndpointId::new());
        let mut held = Vec::new();
        for _ in 0..4 {
            held.push(h.enter(a).await.unwrap());
        }
        assert!(
            h.enter(a).await.is_none(),
            "a full endpoint, after a short wait"
        );
        assert!(
            h.enter(b).await.is_some(),
            "another endpoint is not held up"
        );
        // A slot that comes back during the wait is taken.
        let back = held.pop().unwrap();
        let waiter = tokio::spawn({
            let h = h.clone();
            async move { h.enter(a).await.is_some() }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(back);
        assert!(waiter.await.unwrap());
    }

    #[tokio::test]
    async fn a_slow_endpoint_is_refused_at_once() {
        let h = Hooks::new(Duration::from_secs(1), false, 8).unwrap();
        let a = EndpointId::new();
        let _held = (h.enter(a).await.unwrap(), h.enter(a).await.unwrap());
        *h.gates.lock().unwrap()[&a].last_release.lock().unwrap() =
            Instant::now() - Duration::from_secs(2);
        let t = Instant::now();
        assert!(h.enter(a).await.is_none());
        assert!(t.elapsed() < SLOT_WAIT, "no wait for a slow endpoint");
    }

    #[test]
    fn literal_private_addresses_are_refused() {
        let h = Hooks::new(Duration::from_secs(1), false, 16).unwrap();
        for bad in [
            "http://127.0.0.1/",
            "http://169.254.169.254/latest",
            "http://[::1]:8080/",
        ] {
            assert!(h.allowed(&url::Url::parse(bad).unwrap()).is_err(), "{bad}");
        }
        assert!(
            h.allowed(&url::Url::parse("https://8.8.8.8/").unwrap())
                .is_ok()
        );
        let open = Hooks::new(Duration::from_secs(1), true, 16).unwrap();
        assert!(
            open.allowed(&url::Url::parse("http://127.0.0.1/").unwrap())
                .is_ok()
        );
    }
}

/// Group commit of answered deliveries: the 2xx attempts that end together are recorded
/// with one statement (`delivery::record_delivered`), as status checks share theirs.
#[derive(Clone)]
pub struct Delivered(Group<(Work, Attempt), Result<bool, String>>);

impl Delivered {
    /// Starts the group commit (inside tokio).
    pub fn start(db: DatabaseConnection, limits: BatchLimits) -> Self {
        Self(Group::start(limits, move |calls| {
            let db = db.clone();
            async move { record_batch(&db, calls).await }
        }))
    }

    /// Records a 2xx attempt of a held delivery; `false` when its lease was taken over.
    pub async fn record(
        &self,
        work: Work,
        attempt: Attempt,
    ) -> Result<bool, crate::steps::StepsError> {
        crate::steps::ask(&self.0, "record delivered", (work, attempt)).await
    }
}

async fn record_batch(
    db: &DatabaseConnection,
    calls: Vec<Call<(Work, Attempt), Result<bool, String>>>,
) {
    let answered: Vec<(&Work, &Attempt)> =
        calls.iter().map(|c| (&c.request.0, &c.request.1)).collect();
    match delivery::record_delivered(db, &answered).await {
        Ok(moved) => {
            let moved: HashSet<DeliveryId> = moved.into_iter().collect();
            for c in calls {
                let ok = moved.contains(&c.request.0.id);
                c.answer(Ok(ok));
            }
        }
        Err(e) => {
            let msg = e.to_string();
            for c in calls {
                c.answer(Err(msg.clone()));
            }
        }
    }
}
