//! `webhook_deliveries`: one event to one endpoint, with its retry state.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_deliveries")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub event_id: Uuid,
    pub endpoint_id: Uuid,
    /// `pending` | `succeeded` | `failed` | `dead`.
    pub status: String,
    pub attempt: i32,
    pub next_attempt_at: Option<DateTimeUtc>,
    pub last_response_code: Option<i32>,
    pub last_response_body: Option<String>,
    pub last_attempt_at: Option<DateTimeUtc>,
    pub last_error: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    #[sea_orm(belongs_to, from = "event_id", to = "id", on_delete = "Cascade")]
    pub event: BelongsTo<super::event::Entity>,
    #[sea_orm(belongs_to, from = "endpoint_id", to = "id", on_delete = "Cascade")]
    pub endpoint: BelongsTo<super::webhook_endpoint::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
