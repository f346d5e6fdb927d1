//! Where an execution runs at AMC: instance, account headers, region and connection.

use common::execution::DueStep;
use common::ids::{AmcInstanceId, EntityId, InstanceId, MarketplaceId, Region};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement};
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct Target {
    pub instance_id: AmcInstanceId,
    pub entity_id: EntityId,
    pub marketplace_id: MarketplaceId,
    pub region: Region,
    pub account_id: Uuid,
    /// The owner's Amazon connection, if any.
    pub connection_id: Option<Uuid>,
}

impl Target {
    pub async fn load<C: ConnectionTrait>(
        conn: &C,
        instance: InstanceId,
    ) -> Result<Option<Target>, DbErr> {
        let Some(r) = conn
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT i.amc_instance_id, a.entity_id, a.marketplace_id, a.region, a.id AS account_id, c.id AS connection_id \
                 FROM amc_instances i JOIN amc_accounts a ON a.id = i.account_id \
                 LEFT JOIN amazon_connections c ON c.user_id = i.user_id WHERE i.id = $1",
                [instance.0.into()],
            ))
            .await?
        else {
            return Ok(None);
        };
        Target::new(
            r.try_get("", "amc_instance_id")?,
            r.try_get("", "entity_id")?,
            r.try_get("", "marketplace_id")?,
            &r.try_get::<String>("", "region")?,
            r.try_get("", "account_id")?,
            r.try_get("", "connection_id")?,
        )
        .map(Some)
    }

    /// Where a step read by [`common::execution::read_due`] runs.
    pub fn of_step(s: &DueStep) -> Result<Target, DbErr> {
        Target::new(
            s.amc_instance_id.clone(),
            s.entity_id.clone(),
            s.marketplace_id.clone(),
            &s.region,
            s.account_id,
            s.connection_id,
        )
    }

    fn new(
        instance_id: String,
        entity_id: String,
        marketplace_id: String,
        region: &str,
        account_id: Uuid,
        connection_id: Option<Uuid>,
    ) -> Result<Target, DbErr> {
        Ok(Target {
            instance_id: AmcInstanceId(instance_id),
            entity_id: EntityId(entity_id),
            marketplace_id: MarketplaceId(marketplace_id),
            region: region.parse().map_err(|e: String| DbErr::Custom(e))?,
            account_id,
            connection_id,
        })
    }
}
