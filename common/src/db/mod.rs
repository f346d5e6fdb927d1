//! Database access: [`connect`], and [`text_enum!`](crate::text_enum) for the enums stored
//! as text. Queries are plain SQL in the module that owns each table (sea-orm is the
//! connection pool, the statement API and row decoding; its entities are not used).

pub mod listen;
mod text_enum;

pub use sea_orm::{DatabaseConnection, DbErr};
pub use text_enum::UnknownValue;

use sea_orm::{ConnectOptions, Database};
use std::time::Duration;

/// A pooled connection idle for this long is pinged before use; one used more recently is
/// not (a ping on every checkout would double the round trips of a one-statement call;
/// a connection that broke meanwhile fails its statement, and the pool drops it).
pub const PING_IF_IDLE_FOR: Duration = Duration::from_secs(30);

/// Opens a connection pool of at most `max_connections` (SQL statement logging off).
pub async fn connect(url: &str, max_connections: u32) -> Result<DatabaseConnection, DbErr> {
    let mut opts = ConnectOptions::new(url.to_owned());
    opts.max_connections(max_connections.max(1))
        .test_before_acquire_if_idle_for(PING_IF_IDLE_FOR)
        .sqlx_logging(false);
    Database::connect(opts).await
}
