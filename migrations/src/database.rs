//! Creating and dropping the database named in a PostgreSQL URL, through the `postgres`
//! maintenance database on the same server.

use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbErr, Statement};
use std::ops::Deref;
use url::Url;

/// SQLSTATE `duplicate_database`: another process created the database first.
const DUPLICATE_DATABASE: &str = "42P04";
/// SQLSTATE `unique_violation`: two concurrent `CREATE DATABASE` can also collide on the
/// `pg_database` catalog's unique index instead of reporting 42P04.
const UNIQUE_VIOLATION: &str = "23505";

/// Errors of database creation and removal.
#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    /// The URL does not parse or names no database.
    #[error("invalid database URL: {0}")]
    InvalidUrl(String),
    /// The server answered with an error.
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// The database name of a `postgres://…/name` URL (percent-decoded).
pub fn database_name(database_url: &str) -> Result<String, DatabaseError> {
    let url = Url::parse(database_url).map_err(|e| DatabaseError::InvalidUrl(e.to_string()))?;
    let raw = url.path().trim_start_matches('/');
    let name = percent_decode(raw)
        .ok_or_else(|| DatabaseError::InvalidUrl(format!("bad escape in database name {raw}")))?;
    if name.is_empty() || name.contains('/') {
        return Err(DatabaseError::InvalidUrl(format!(
            "{} names no database",
            redact(database_url)
        )));
    }
    Ok(name)
}

/// The same server's `postgres` maintenance database (query string kept).
pub fn maintenance_url(database_url: &str) -> Result<String, DatabaseError> {
    let mut url = Url::parse(database_url).map_err(|e| DatabaseError::InvalidUrl(e.to_string()))?;
    url.set_path("/postgres");
    Ok(url.to_string())
}

/// The URL without its password, for messages.
pub fn redact(database_url: &str) -> String {
    match Url::parse(database_url) {
        Ok(mut url) => {
            if url.password().is_some() {
                let _ = url.set_password(Some("***"));
            }
            url.to_string()
        }
        Err(_) => "<unparsable URL>".to_owned(),
    }
}

/// `"name"` with embedded quotes doubled: a safe SQL identifier.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The SQLSTATE of a database error, when the server sent one.
pub fn sqlstate(err: &DbErr) -> Option<String> {
    use sea_orm::RuntimeErr;
    match err {
        DbErr::Exec(RuntimeErr::SqlxError(e))
        | DbErr::Query(RuntimeErr::SqlxError(e))
        | DbErr::Conn(RuntimeErr::SqlxError(e)) => match e.deref() {
            sea_orm::sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
            _ => None,
        },
        _ => None,
    }
}

async fn connect_maintenance(database_url: &str) -> Result<DatabaseConnection, DatabaseError> {
    let mut opts = ConnectOptions::new(maintenance_url(database_url)?);
    opts.max_connections(1).sqlx_logging(false);
    Ok(Database::connect(opts).await?)
}

/// Creates the database named in the URL unless it exists. Returns whether this call
/// created it; a concurrent creator winning the race is not an error.
pub async fn create_database_if_missing(database_url: &str) -> Result<bool, DatabaseError> {
    let name = database_name(database_url)?;
    let admin = connect_maintenance(database_url).await?;
    let backend = admin.get_database_backend();
    let exists = admin
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            "SELECT 1 FROM pg_database WHERE datname = $1",
            [name.clone().into()],
        ))
        .await?
        .is_some();
    let created = if exists {
        false
    } else {
        match admin
            .execute_unprepared(&format!("CREATE DATABASE {}", quote_ident(&name)))
            .await
        {
            Ok(_) => true,
            Err(e)
                if matches!(
                    sqlstate(&e).as_deref(),
                    Some(DUPLICATE_DATABASE | UNIQUE_VIOLATION)
                ) =>
            {
                false
            }
            Err(e) => {
                let _ = admin.close().await;
                return Err(e.into());
            }
        }
    };
    admin.close().await?;
    Ok(created)
}

/// Drops the database named in the URL (`WITH (FORCE)`: open sessions are terminated).
/// A database that does not exist is not an error.
pub async fn drop_database(database_url: &str) -> Result<(), DatabaseError> {
    let name = database_name(database_url)?;
    let admin = connect_maintenance(database_url).await?;
    let res = admin
        .execute_unprepared(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            quote_ident(&name)
        ))
        .await;
    admin.close().await?;
    res?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_database_name() {
        assert_eq!(
            database_name("postgres://postgres@127.0.0.1:5432/amp").ok(),
            Some("amp".to_owned())
        );
        assert_eq!(
            database_name("postgres://u:p@h/amp_test%2Dx?sslmode=disable").ok(),
            Some("amp_test-x".to_owned())
        );
        assert!(database_name("postgres://postgres@127.0.0.1:5432/").is_err());
        assert!(database_name("postgres://postgres@127.0.0.1:5432").is_err());
        assert!(database_name("not a url").is_err());
    }

    #[test]
    fn maintenance_url_keeps_server_and_query() {
        assert_eq!(
            maintenance_url("postgres://u:p@h:5433/amp?sslmode=require").ok(),
            Some("postgres://u:p@h:5433/postgres?sslmode=require".to_owned())
        );
    }

    #[test]
    fn quotes_identifiers() {
        assert_eq!(quote_ident("amp"), "\"amp\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }

    #[test]
    fn redacts_password() {
        assert_eq!(
            redact("postgres://u:secret@h/amp"),
            "postgres://u:***@h/amp"
        );
        assert_eq!(redact("postgres://u@h/amp"), "postgres://u@h/amp");
    }
}
