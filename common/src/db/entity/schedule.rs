//! `schedules`: cron schedules of a workflow (IANA zone, relative time window rule,
//! overlap and catch-up policies).

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "schedules")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub user_id: Uuid,
    pub workflow_id: Uuid,
    pub name: String,
    pub cron: String,
    pub time_zone: String,
    #[sea_orm(column_type = "JsonBinary")]
    pub time_window_rule: Json,
    #[sea_orm(column_type = "JsonBinary")]
    pub parameters: Json,
    pub enabled: bool,
    /// `skip` | `queue`.
    pub overlap_policy: String,
    /// `none` | `latest` | `all`.
    pub catch_up_policy: String,
    pub next_run_at: Option<DateTimeUtc>,
    pub last_run_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    #[sea_orm(belongs_to, from = "user_id", to = "id", on_delete = "Cascade")]
    pub user: BelongsTo<super::user::Entity>,
    #[sea_orm(belongs_to, from = "workflow_id", to = "id", on_delete = "Cascade")]
    pub workflow: BelongsTo<super::workflow::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
