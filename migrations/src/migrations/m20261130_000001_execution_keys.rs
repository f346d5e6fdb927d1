//! One composite foreign key from executions to their workflow's (id, instance, user)
//! instead of three single-column keys, and partial indexes that new runs skip; plain SQL
//! in `m20261130_000001_execution_keys.sql` (and `_down.sql`).

use super::m20260101_000001_initial::run_script;
use sea_orm_migration::prelude::*;

const UP_SQL: &str = include_str!("m20261130_000001_execution_keys.sql");
const DOWN_SQL: &str = include_str!("m20261130_000001_execution_keys_down.sql");

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
