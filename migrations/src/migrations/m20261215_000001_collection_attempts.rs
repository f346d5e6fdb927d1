//! Collections: each attempt linked to its window, failed windows indexed, why a
//! collection was closed, and the repair of collections older than windows; plain SQL
//! in `m20261215_000001_collection_attempts.sql` (and `_down.sql`).

use super::m20260101_000001_initial::run_script;
use sea_orm_migration::prelude::*;

const UP_SQL: &str = include_str!("m20261215_000001_collection_attempts.sql");
const DOWN_SQL: &str = include_str!("m20261215_000001_collection_attempts_down.sql");

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run_script(manager, UP_SQL).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run_script(manager, DOWN_SQL).await
    }
}
