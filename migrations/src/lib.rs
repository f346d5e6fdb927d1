//! Database migrations of RecomAMP Engine: the [`Migrator`] with the whole data model
//! (DESIGN.md §3), plus helpers that create the database first ([`migrate_up`]) and drop
//! it ([`drop_database`], for tests).

pub mod admin;
pub mod database;
pub mod migrations;

pub use database::{DatabaseError, create_database_if_missing, database_name};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, Statement, TransactionTrait,
};
pub use sea_orm_migration::MigratorTrait;
use sea_orm_migration::prelude::*;

/// Advisory lock key held (per transaction) while migrations run, so that two processes
/// migrating the same database at once apply each migration exactly once.
const MIGRATION_LOCK_KEY: i64 = 0x0061_6d70_5f6d_6967; // "amp_mig"

/// All migrations of the project, oldest first.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(migrations::m20260101_000001_initial::Migration),
            Box::new(migrations::m20261130_000001_execution_keys::Migration),
            Box::new(migrations::m20261201_000001_user_tokens::Migration),
            Box::new(migrations::m20261202_000001_schedules::Migration),
            Box::new(migrations::m20261207_000001_collections::Migration),
            Box::new(migrations::m20261208_000001_webhooks::Migration),
            Box::new(migrations::m20261209_000001_telemetry::Migration),
            Box::new(migrations::m20261210_000001_execution_lists::Migration),
            Box::new(migrations::m20261211_000001_workflow_versions::Migration),
            Box::new(migrations::m20261211_000002_query_templates::Migration),
            Box::new(migrations::m20261212_000001_result_types::Migration),
            Box::new(migrations::m20261213_000001_saved_workflows::Migration),
            Box::new(migrations::m20261214_000001_batches::Migration),
            Box::new(migrations::m20261215_000001_collection_attempts::Migration),
        ]
    }
}

/// One migration and whether it is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationState {
    /// The migration's name (e.g. `m20260101_000001_initial`).
    pub name: String,
    /// Whether the database records it as applied.
    pub applied: bool,
}

async fn connect(database_url: &str) -> anyhow::Result<DatabaseConnection> {
    let mut opts = ConnectOptions::new(database_url.to_owned());
    opts.max_connections(2).sqlx_logging(false);
    Ok(Database::connect(opts).await?)
}

/// Creates the database named in `database_url` when it does not exist, then applies the
/// pending migrations. Safe to run twice, and concurrently.
pub async fn migrate_up(database_url: &str) -> anyhow::Result<()> {
    migrate_up_applied(database_url).await.map(|_| ())
}

/// Like [`migrate_up`], returning the names of the migrations this call applied (empty
/// when the database was already up to date).
pub async fn migrate_up_applied(database_url: &str) -> anyhow::Result<Vec<String>> {
    if create_database_if_missing(database_url).await? {
        tracing::info!(
            database = %database_name(database_url)?,
            "created database"
        );
    }
    let db = connect(database_url).await?;
    let result = apply_pending(&db).await;
    db.close().await?;
    result
}

async fn apply_pending(db: &DatabaseConnection) -> anyhow::Result<Vec<String>> {
    let txn = db.begin().await?;
    txn.execute_raw(Statement::from_sql_and_values(
        txn.get_database_backend(),
        "SELECT pg_advisory_xact_lock($1)",
        [MIGRATION_LOCK_KEY.into()],
    ))
    .await?;
    let pending: Vec<String> = Migrator::get_pending_migrations(&txn)
        .await?
        .iter()
        .map(|m| m.name().to_owned())
        .collect();
    Migrator::up(&txn, None).await?;
    txn.commit().await?;
    for name in &pending {
        tracing::info!(migration = %name, "applied migration");
    }
    Ok(pending)
}

/// Every known migration with its state. The database must exist.
pub async fn migration_status(database_url: &str) -> anyhow::Result<Vec<MigrationState>> {
    let db = connect(database_url).await?;
    let result = Migrator::get_migration_with_status_read_only(&db).await;
    db.close().await?;
    Ok(result?
        .iter()
        .map(|m| MigrationState {
            name: m.name().to_owned(),
            applied: m.status() == sea_orm_migration::MigrationStatus::Applied,
        })
        .collect())
}

/// Drops the database named in `database_url` `WITH (FORCE)` (for tests); a missing
/// database is not an error.
pub async fn drop_database(database_url: &str) -> anyhow::Result<()> {
    database::drop_database(database_url).await?;
    Ok(())
}
