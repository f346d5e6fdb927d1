//! Collections as CONTRACT gives them (windows of any granularity, pinned SQL, the
//! instance's collection_reserve); plain SQL
//! in `m20261207_000001_collections.sql` (and `_down.sql`).

use super::m20260101_000001_initial::run_script;
use sea_orm_migration::prelude::*;

const UP_SQL: &str = include_str!("m20261207_000001_collections.sql");
const DOWN_SQL: &str = include_str!("m20261207_000001_collections_down.sql");

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
