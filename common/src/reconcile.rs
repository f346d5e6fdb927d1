//! What a scheduler replica asks Postgres once per `AMP_RECONCILE_INTERVAL`, in one
//! statement: its heartbeat, what the schedules look like (the fire loop's probe), and the
//! overdue work the reconciler re-enqueues (DESIGN inv. 1). While nothing is due and
//! nothing changes, this is the only query a replica makes.

use crate::execution::Overdue;
use crate::ids::{CollectionId, DeliveryId};
use crate::repo::stmt;
use crate::schedule::{Probe, Replica};
use sea_orm::{DatabaseConnection, DbErr, FromQueryResult};
use std::time::Duration;

/// One look at the system.
#[derive(Debug, Clone)]
pub struct Look {
    pub probe: Probe,
    pub overdue: Overdue,
    /// Open collections that stand still though they should not (see
    /// [`crate::collection::advance_stalled`]).
    pub stalled_collections: Vec<CollectionId>,
    /// Pending webhook deliveries whose lease or due passed by more than the grace (their
    /// job, or their attempt's worker, was lost): `(id, due)`.
    pub overdue_deliveries: Vec<(DeliveryId, chrono::DateTime<chrono::Utc>)>,
    /// Some pending delivery never claimed has been due for more than the grace: the
    /// dispatchers are to be woken.
    pub deliveries_waiting: bool,
}

#[derive(serde::Deserialize)]
struct OverdueDelivery {
    id: DeliveryId,
    due: chrono::DateTime<chrono::Utc>,
}

/// Records `replica`'s heartbeat and looks: work overdue by more than `grace`, at most
/// `limit` rows of each kind.
pub async fn look(
    db: &DatabaseConnection,
    replica: &Replica,
    grace: Duration,
    limit: u64,
) -> Result<Look, DbErr> {
    let sql = format!(
        "{} SELECT {}, {}, {}, {}",
        Replica::HEARTBEAT_CTE,
        Probe::columns(),
        Overdue::columns(),
        crate::collection::advance::stalled_column(),
        crate::webhook::delivery::overdue_columns()
    );
    let [id, horizon] = replica.heartbeat_values();
    let row = sea_orm::ConnectionTrait::query_one_raw(
        db,
        stmt(
            &sql,
            [
                id,
                horizon,
                grace.as_secs_f64().into(),
                (limit as i64).into(),
            ],
        ),
    )
    .await?
    .ok_or_else(|| DbErr::RecordNotFound("the look returned no row".into()))?;
    let stalled: serde_json::Value = row.try_get("", "stalled_collections")?;
    let deliveries: serde_json::Value = row.try_get("", "overdue_deliveries")?;
    let deliveries: Vec<OverdueDelivery> = serde_json::from_value(deliveries)
        .map_err(|e| DbErr::Type(format!("overdue_deliveries: {e}")))?;
    Ok(Look {
        overdue_deliveries: deliveries.into_iter().map(|d| (d.id, d.due)).collect(),
        deliveries_waiting: row.try_get("", "deliveries_waiting")?,
        probe: Probe::from_query_result(&row, "")?,
        overdue: Overdue::from_row(&row)?,
        stalled_collections: serde_json::from_value(stalled)
            .map_err(|e| DbErr::Type(format!("stalled_collections: {e}")))?,
    })
}
