//! The operator's commands of the `migrate` binary besides the schema: bootstrap an
//! administrator, re-encrypt stored tokens and secrets after a key change, and put dead
//! jobs back on their queues. Each reads the same configuration as the processes.

use anyhow::Context;
use common::config::Config;
use common::repo::users::{Admin, create_admin};

/// `create-admin --email E`: a new user with the admin role. Its password is
/// `AMP_ADMIN_PASSWORD` (at least 12 characters) or, when unset, a random one printed once.
/// An email already taken changes nothing. Returns what to print.
pub async fn create_admin_user(config: &Config, email: &str) -> anyhow::Result<String> {
    let email = common::repo::users::normalize_email(email)
        .map_err(|why| anyhow::anyhow!("--email {why}"))?;
    let (password, shown) = match std::env::var("AMP_ADMIN_PASSWORD") {
        Ok(p) if p.chars().count() >= 12 => (p, false),
        Ok(_) => anyhow::bail!("AMP_ADMIN_PASSWORD must be at least 12 characters"),
        Err(_) => (common::crypto::random_token(18), true),
    };
    let (hash, password) = tokio::task::spawn_blocking(move || {
        common::crypto::hash_password(&password).map(|h| (h, password))
    })
    .await?
    .context("hashing the password")?;
    let db = common::db::connect(&config.database_url, 1)
        .await
        .context("connecting to Postgres (AMP_DATABASE_URL)")?;
    match create_admin(&db, &email, &hash).await? {
        Admin::Created(u) if shown => Ok(format!(
            "created admin {} ({}); its password, shown this once: {}",
            u.email, u.id, password
        )),
        Admin::Created(u) => Ok(format!(
            "created admin {} ({}) with the password in AMP_ADMIN_PASSWORD",
            u.email, u.id
        )),
        Admin::Exists(u) => Ok(format!(
            "{} already exists (role {}); nothing changed",
            u.email, u.role
        )),
    }
}

/// `rotate-encryption-key`: re-encrypts every stored token and secret under
/// `AMP_ENCRYPTION_KEY`, opening the old ones with `AMP_ENCRYPTION_KEY_PREVIOUS`.
pub async fn rotate_encryption_key(config: &Config) -> anyhow::Result<String> {
    if config.encryption_key_previous.is_none() {
        anyhow::bail!(
            "AMP_ENCRYPTION_KEY_PREVIOUS must hold the old key (AMP_ENCRYPTION_KEY the new one)"
        );
    }
    let cipher = config.cipher().context("AMP_ENCRYPTION_KEY")?;
    let db = common::db::connect(&config.database_url, 2)
        .await
        .context("connecting to Postgres (AMP_DATABASE_URL)")?;
    let r = common::keys::rotate(&db, &cipher).await?;
    let summary = format!(
        "re-encrypted {} row(s); {} already under the new key; {} opened by neither key",
        r.rewritten, r.current, r.unreadable
    );
    if r.unreadable > 0 {
        anyhow::bail!("{summary}: check AMP_ENCRYPTION_KEY_PREVIOUS");
    }
    Ok(summary)
}

/// `replay-dead-jobs [--queue Q] [--limit N]`: puts dead jobs back on their queues.
pub async fn replay_dead_jobs(
    config: &Config,
    queue: Option<&str>,
    limit: u64,
) -> anyhow::Result<String> {
    let db = common::db::connect(&config.database_url, 2)
        .await
        .context("connecting to Postgres (AMP_DATABASE_URL)")?;
    let mut qc = queue::QueueConfig::new(config.redis_url.clone(), config.redis_prefix.clone());
    qc.claim_idle = config.claim_idle;
    let producer = queue::Producer::connect(qc)
        .await
        .context("connecting to Redis (AMP_REDIS_URL)")?;
    let r = common::fleet::replay_dead_jobs(&db, &producer, queue, limit).await?;
    Ok(format!("put {} dead job(s) back on their queues", r.jobs))
}
