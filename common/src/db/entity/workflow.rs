//! `workflows`: a saved AMC query with `{{param}}` placeholders and default parameters.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "workflows")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub user_id: Uuid,
    pub instance_id: Uuid,
    pub name: String,
    pub description: Option<String>,
    pub sql_query: String,
    #[sea_orm(column_type = "JsonBinary")]
    pub parameters: Json,
    pub output_format: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    #[sea_orm(belongs_to, from = "user_id", to = "id", on_delete = "Cascade")]
    pub user: BelongsTo<super::user::Entity>,
    #[sea_orm(belongs_to, from = "instance_id", to = "id", on_delete = "Cascade")]
    pub instance: BelongsTo<super::amc_instance::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
