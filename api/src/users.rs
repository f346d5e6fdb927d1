//! Whether the user of an access token still exists, at its token version: the check of
//! every authenticated request. Answers come from a cache of users this process has seen,
//! kept true by Postgres: every delete of a user, or change of its role or token version,
//! sends a NOTIFY on `amp_users` (migration `m20261201_000001_user_tokens`) and drops the
//! user from every API replica's cache at once. While the LISTEN connection is down
//! nothing is cached (each check reads the row), and it is emptied when it comes back.

use common::ids::UserId;
use common::repo::users;
use sea_orm::DatabaseConnection;
use sea_orm::sqlx::postgres::PgListener;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use uuid::Uuid;

/// The NOTIFY channel of user changes.
pub const CHANNEL: &str = "amp_users";
/// More cached users than this empties the cache (it refills from the rows).
const MAX_CACHED: usize = 100_000;

/// A user as the check needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Known {
    pub token_version: i32,
    pub role: users::Role,
}

/// Why a token's user was refused.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error("the user of this token no longer exists, or its tokens were revoked")]
    Refused,
    #[error(transparent)]
    Db(#[from] common::repo::RepoError),
}

/// The cache and its LISTEN task.
pub struct UserGate {
    db: DatabaseConnection,
    /// The LISTEN connection is one of its own, not taken from the pool.
    database_url: String,
    cache: RwLock<HashMap<Uuid, Known>>,
    /// Bumped by every invalidation, so a read that raced one is not cached.
    generation: AtomicU64,
    listening: AtomicBool,
}

impl UserGate {
    /// Starts the gate and its LISTEN task (inside tokio).
    pub fn start(db: DatabaseConnection, database_url: &str) -> Arc<Self> {
        let gate = Arc::new(Self {
            db,
            database_url: database_url.to_owned(),
            cache: RwLock::new(HashMap::new()),
            generation: AtomicU64::new(0),
            listening: AtomicBool::new(false),
        });
        tokio::spawn(listen(Arc::downgrade(&gate)));
        gate
    }

    /// The user if it exists with this token version.
    pub async fn check(&self, user: UserId, version: i32) -> Result<Known, GateError> {
        let cached = self.cache.read().ok().and_then(|c| c.get(&user.0).cloned());
        let known = match cached {
            Some(k) => k,
            None => {
                let generation = self.generation.load(Ordering::Acquire);
                let row = users::find_user(&self.db, user)
                    .await?
                    .ok_or(GateError::Refused)?;
                let known = Known {
                    token_version: row.token_version,
                    role: row.role,
                };
                self.remember(user, &known, generation);
                known
            }
        };
        if known.token_version != version {
            return Err(GateError::Refused);
        }
        Ok(known)
    }

    fn remember(&self, user: UserId, known: &Known, generation: u64) {
        if !self.listening.load(Ordering::Acquire) {
            return;
        }
        let Ok(mut cache) = self.cache.write() else {
            return;
        };
        // An invalidation since the read may be about this user: do not cache what was read.
        if self.generation.load(Ordering::Acquire) != generation {
            return;
        }
        if cache.len() >= MAX_CACHED {
            cache.clear();
        }
        cache.insert(user.0, known.clone());
    }

    fn forget(&self, user: Option<Uuid>) {
        if let Ok(mut cache) = self.cache.write() {
            self.generation.fetch_add(1, Ordering::AcqRel);
            match user {
                Some(u) => {
                    cache.remove(&u);
                }
                None => cache.clear(),
            }
        }
    }

    /// Whether changes are being heard (tests wait for it).
    pub fn is_listening(&self) -> bool {
        self.listening.load(Ordering::Acquire)
    }
}

/// Listens for user changes until the gate is dropped, reconnecting with back-off.
async fn listen(gate: std::sync::Weak<UserGate>) {
    let mut delay = Duration::from_millis(100);
    loop {
        let Some(g) = gate.upgrade() else { return };
        let connected = async {
            let mut l = PgListener::connect(&g.database_url).await?;
            l.listen(CHANNEL).await?;
            Ok::<_, sea_orm::sqlx::Error>(l)
        }
        .await;
        let mut listener = match connected {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "cannot LISTEN for user changes; checking every token against the database");
                drop(g);
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        delay = Duration::from_millis(100);
        // What was cached before this connection may have changed unheard.
        g.forget(None);
        g.listening.store(true, Ordering::Release);
        drop(g);
        loop {
            let next = tokio::time::timeout(Duration::from_secs(30), listener.try_recv()).await;
            let Some(g) = gate.upgrade() else { return };
            match next {
                // Quiet: just check that the gate is still wanted.
                Err(_) => continue,
                Ok(Ok(Some(n))) => g.forget(Uuid::parse_str(n.payload()).ok()),
                Ok(Ok(None)) | Ok(Err(_)) => {
                    // The connection was lost: notifications may be missed until it is back.
                    g.listening.store(false, Ordering::Release);
                    g.forget(None);
                    tracing::warn!("the LISTEN connection for user changes was lost; reconnecting");
                    break;
                }
            }
        }
    }
}
