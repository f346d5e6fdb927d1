//! Saved workflows at AMC for queries too big for an ad hoc run; plain SQL
//! in `m20261213_000001_saved_workflows.sql` (and `_down.sql`).

use super::m20260101_000001_initial::run_script;
use sea_orm_migration::prelude::*;

const UP_SQL: &str = include_str!("m20261213_000001_saved_workflows.sql");
const DOWN_SQL: &str = include_str!("m20261213_000001_saved_workflows_down.sql");

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
