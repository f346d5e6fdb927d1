//! Batch runs, and the keys that let a run sit on another instance of its user than its
//! workflow's while the database still enforces tenancy; plain SQL in
//! `m20261214_000001_batches.sql` (and `_down.sql`).

use super::m20260101_000001_initial::run_script;
use sea_orm_migration::prelude::*;

const UP_SQL: &str = include_str!("m20261214_000001_batches.sql");
const DOWN_SQL: &str = include_str!("m20261214_000001_batches_down.sql");

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
