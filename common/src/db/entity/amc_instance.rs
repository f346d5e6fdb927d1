//! `amc_instances`: an AMC instance of an account. `id` is our UUID, `amc_instance_id`
//! AMC's own string id.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "amc_instances")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub user_id: Uuid,
    pub account_id: Uuid,
    pub name: String,
    pub amc_instance_id: String,
    pub max_concurrent_executions: i32,
    pub daily_execution_quota: Option<i32>,
    /// IANA zone of the instance, for the daily quota.
    pub time_zone: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    #[sea_orm(belongs_to, from = "user_id", to = "id", on_delete = "Cascade")]
    pub user: BelongsTo<super::user::Entity>,
    #[sea_orm(belongs_to, from = "account_id", to = "id", on_delete = "Cascade")]
    pub account: BelongsTo<super::amc_account::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
