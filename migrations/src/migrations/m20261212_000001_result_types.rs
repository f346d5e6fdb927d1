//! When retention removed a run's stored result; plain SQL
//! in `m20261212_000001_result_types.sql` (and `_down.sql`).

use super::m20260101_000001_initial::run_script;
use sea_orm_migration::prelude::*;

const UP_SQL: &str = include_str!("m20261212_000001_result_types.sql");
const DOWN_SQL: &str = include_str!("m20261212_000001_result_types_down.sql");

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
