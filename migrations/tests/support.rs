//! Shared helpers of the integration tests: a fresh, uniquely named database per test.

#![allow(dead_code)]

use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};

/// The server the tests use (`AMP_TEST_PG_URL` without a database name, default local).
pub fn server_url() -> String {
    std::env::var("AMP_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// A URL naming a database that does not exist yet.
pub fn fresh_database_url(tag: &str) -> String {
    format!(
        "{}/amp_{tag}_{}",
        server_url().trim_end_matches('/'),
        uuid::Uuid::new_v4().simple()
    )
}

/// Whether a database of that name exists on the server.
pub async fn database_exists(name: &str) -> bool {
    let db = sea_orm::Database::connect(format!("{}/postgres", server_url()))
        .await
        .expect("connect to postgres maintenance db");
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            "SELECT 1 FROM pg_database WHERE datname = $1",
            [name.into()],
        ))
        .await
        .expect("query pg_database");
    db.close().await.expect("close");
    row.is_some()
}

/// Names (`relname`) of the public tables.
pub async fn table_names(db: &DatabaseConnection) -> Vec<String> {
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT table_name FROM information_schema.tables \
             WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY table_name",
        ))
        .await
        .expect("list tables");
    rows.iter()
        .map(|r| r.try_get::<String>("", "table_name").expect("table_name"))
        .collect()
}

/// Names of the unique indexes of a table.
pub async fn unique_indexes(db: &DatabaseConnection, table: &str) -> Vec<String> {
    names(
        db,
        "SELECT i.relname AS name FROM pg_index x \
         JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid \
         WHERE t.relname = $1 AND x.indisunique AND NOT x.indisprimary ORDER BY 1",
        table,
    )
    .await
}

/// Names of the foreign keys of a table.
pub async fn foreign_keys(db: &DatabaseConnection, table: &str) -> Vec<String> {
    names(
        db,
        "SELECT conname::text AS name FROM pg_constraint \
         WHERE conrelid = $1::regclass AND contype = 'f' ORDER BY 1",
        table,
    )
    .await
}

/// The `name` column of a catalog query about one table.
async fn names(db: &DatabaseConnection, sql: &str, table: &str) -> Vec<String> {
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            sql,
            [table.into()],
        ))
        .await
        .expect("catalog query");
    rows.iter()
        .map(|r| r.try_get::<String>("", "name").expect("name"))
        .collect()
}

/// Drops its database when dropped, even when the test panicked.
pub struct DropGuard(pub String);

impl Drop for DropGuard {
    fn drop(&mut self) {
        let url = self.0.clone();
        let res = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(migrations::drop_database(&url))
        })
        .join();
        if !matches!(res, Ok(Ok(()))) {
            eprintln!("could not drop test database {}", self.0);
        }
    }
}

/// Runs one SQL statement, panicking on error.
pub async fn exec(db: &DatabaseConnection, sql: &str) {
    db.execute_unprepared(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// Runs one SQL statement that must fail; returns its SQLSTATE.
pub async fn exec_err(db: &DatabaseConnection, sql: &str) -> String {
    match db.execute_unprepared(sql).await {
        Ok(_) => panic!("expected an error from {sql}"),
        Err(e) => migrations::database::sqlstate(&e).unwrap_or_else(|| panic!("no SQLSTATE: {e}")),
    }
}
