//! Database access: the sea-orm entities of every table ([`entity`]) and [`connect`].
//! Query functions live next to the code that needs them.

pub mod entity;

pub use entity::execution::{ExecutionStatus, UnknownExecutionStatus};
pub use sea_orm::{DatabaseConnection, DbErr};

use sea_orm::{ConnectOptions, Database};

/// Opens a connection pool of at most `max_connections` (SQL statement logging off).
pub async fn connect(url: &str, max_connections: u32) -> Result<DatabaseConnection, DbErr> {
    let mut opts = ConnectOptions::new(url.to_owned());
    opts.max_connections(max_connections.max(1))
        .sqlx_logging(false);
    Database::connect(opts).await
}
