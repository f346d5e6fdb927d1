//! `workers`: registered worker processes (consumer name, queues, heartbeat).

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "workers")]
pub struct Model {
    /// The consumer name.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub hostname: String,
    pub pid: i32,
    pub queues: Vec<String>,
    pub concurrency: i32,
    pub started_at: DateTimeUtc,
    pub last_heartbeat_at: DateTimeUtc,
    pub stopped_at: Option<DateTimeUtc>,
}

impl ActiveModelBehavior for ActiveModel {}
