//! `dead_jobs`: jobs that used up their attempts, kept for inspection and retry.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "dead_jobs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub queue: String,
    #[sea_orm(column_type = "JsonBinary")]
    pub payload: Json,
    pub error: String,
    pub attempts: i32,
    pub created_at: DateTimeUtc,
    pub retried_at: Option<DateTimeUtc>,
}

impl ActiveModelBehavior for ActiveModel {}
