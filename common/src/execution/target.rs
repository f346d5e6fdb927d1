//! Where an execution runs at AMC: instance, account headers, region and the owner's
//! connection, read with one join wherever a step needs it (alone, or beside its row in
//! the batched read of status checks).

use crate::amc::AmcTarget;
use crate::ids::{
    AccountId, AmcInstanceId, ConnectionId, EntityId, InstanceId, MarketplaceId, Region,
};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, FromQueryResult, Statement};

#[derive(Debug, Clone, FromQueryResult)]
pub struct Target {
    pub amc_instance_id: AmcInstanceId,
    pub entity_id: EntityId,
    pub marketplace_id: MarketplaceId,
    pub region: Region,
    pub account_id: AccountId,
    /// The owner's Amazon connection, if any.
    pub connection_id: Option<ConnectionId>,
}

/// The columns of a [`Target`] over [`target_joins`].
pub(crate) const TARGET_COLUMNS: &str = "i.amc_instance_id, a.entity_id, a.marketplace_id, \
    a.region, a.id AS account_id, c.id AS connection_id";

/// The joins from an instance id (`instance`, an SQL expression) to its account and its
/// owner's connection (aliases `i`, `a`, `c`).
pub(crate) fn target_joins(instance: &str) -> String {
    format!(
        "JOIN amc_instances i ON i.id = {instance} JOIN amc_accounts a ON a.id = i.account_id \
         LEFT JOIN amazon_connections c ON c.user_id = i.user_id"
    )
}

impl Target {
    /// Where runs of `instance` go; `None` if it no longer exists.
    pub async fn load<C: ConnectionTrait>(
        conn: &C,
        instance: InstanceId,
    ) -> Result<Option<Target>, DbErr> {
        let sql = format!(
            "SELECT {TARGET_COLUMNS} FROM (SELECT $1::uuid AS instance_id) e {}",
            target_joins("e.instance_id")
        );
        Target::find_by_statement(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            [instance.into()],
        ))
        .one(conn)
        .await
    }

    /// The AMC call target with this access token.
    pub fn amc<'a>(&'a self, token: &'a str) -> AmcTarget<'a> {
        AmcTarget {
            region: self.region,
            entity_id: &self.entity_id,
            marketplace_id: &self.marketplace_id,
            instance_id: &self.amc_instance_id,
            access_token: token,
        }
    }
}
