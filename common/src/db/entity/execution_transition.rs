//! `execution_transitions`: the audit trail of an execution's status changes.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "execution_transitions")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub execution_id: Uuid,
    pub from_status: Option<String>,
    pub to_status: String,
    pub reason: Option<String>,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub detail: Option<Json>,
    pub created_at: DateTimeUtc,
    #[sea_orm(belongs_to, from = "execution_id", to = "id", on_delete = "Cascade")]
    pub execution: BelongsTo<super::execution::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
