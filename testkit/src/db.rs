//! A database of one's own: created and migrated, dropped at the end.

pub const SERVER: &str = "postgres://postgres@127.0.0.1:5432";

pub struct TestDb {
    pub url: String,
    pub name: String,
    dropped: bool,
}

impl TestDb {
    pub async fn new() -> anyhow::Result<Self> {
        Self::on(SERVER).await
    }

    /// A database on another server (`postgres://user@host:port`).
    pub async fn on(server: &str) -> anyhow::Result<Self> {
        let name = crate::unique("amp_test");
        let url = format!("{server}/{name}");
        migrations::migrate_up(&url).await?;
        Ok(Self {
            url,
            name,
            dropped: false,
        })
    }

    pub async fn connect(&self) -> anyhow::Result<sea_orm::DatabaseConnection> {
        Ok(common::db::connect(&self.url, 5).await?)
    }

    /// Drops the database (also done, blocking, on drop).
    pub async fn drop_db(mut self) {
        self.dropped = true;
        if let Err(e) = migrations::drop_database(&self.url).await {
            eprintln!("could not drop test database {}: {e:#}", self.name);
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        let url = self.url.clone();
        // A panicking test never reaches drop_db: drop the database on a thread of its own.
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                let _ = rt.block_on(migrations::drop_database(&url));
            }
        })
        .join();
    }
}
