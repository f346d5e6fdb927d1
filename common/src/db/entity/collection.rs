//! `collections`: a backfill of a workflow over a date range, one week at a time.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "collections")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub user_id: Uuid,
    pub workflow_id: Uuid,
    pub name: String,
    pub start_date: Date,
    pub end_date: Date,
    /// `week`.
    pub granularity: String,
    pub max_concurrency: i32,
    pub max_week_attempts: i32,
    #[sea_orm(column_type = "JsonBinary")]
    pub parameters: Json,
    pub time_zone: String,
    /// `running` | `paused` | `succeeded` | `failed` | `cancelled`.
    pub status: String,
    pub weeks_total: i32,
    pub weeks_succeeded: i32,
    pub weeks_failed: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub completed_at: Option<DateTimeUtc>,
    #[sea_orm(belongs_to, from = "user_id", to = "id", on_delete = "Cascade")]
    pub user: BelongsTo<super::user::Entity>,
    #[sea_orm(belongs_to, from = "workflow_id", to = "id", on_delete = "Cascade")]
    pub workflow: BelongsTo<super::workflow::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
