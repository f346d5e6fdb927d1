//! `collection_weeks`: one half-open week `[Mon 00:00, next Mon 00:00)` of a collection.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "collection_weeks")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub collection_id: Uuid,
    /// Local time (no zone), as AMC time windows are.
    pub week_start: DateTime,
    pub week_end: DateTime,
    /// `pending` | `running` | `succeeded` | `failed` | `cancelled`.
    pub status: String,
    pub execution_id: Option<Uuid>,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    #[sea_orm(belongs_to, from = "collection_id", to = "id", on_delete = "Cascade")]
    pub collection: BelongsTo<super::collection::Entity>,
    #[sea_orm(belongs_to, from = "execution_id", to = "id", on_delete = "SetNull")]
    pub execution: BelongsTo<Option<super::execution::Entity>>,
}

impl ActiveModelBehavior for ActiveModel {}
