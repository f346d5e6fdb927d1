//! Users: registration and lookup by email or id.

use super::{RepoError, stmt};
use crate::ids::UserId;
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, FromQueryResult};

crate::text_enum! {
    /// What a user may do.
    pub enum Role("role") {
        Admin = "admin",
        Member = "member",
    }
}

/// A user row (the password hash stays inside the API's auth code).
#[derive(Debug, Clone, FromQueryResult)]
pub struct User {
    pub id: UserId,
    pub email: String,
    pub password_hash: Option<String>,
    pub role: Role,
    /// Access tokens carry it; raising it (or deleting the user) refuses older tokens.
    pub token_version: i32,
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, email, password_hash, role, token_version, created_at";

/// Inserts a user; an email already taken → [`RepoError::Conflict`].
/// The caller normalises (lowercases) the email first.
pub async fn create_user(
    db: &impl ConnectionTrait,
    email: &str,
    password_hash: &str,
) -> Result<User, RepoError> {
    let sql = format!(
        "INSERT INTO users (id, email, password_hash) VALUES ($1, $2, $3) RETURNING {COLUMNS}"
    );
    let values = [UserId::new().into(), email.into(), password_hash.into()];
    User::find_by_statement(stmt(&sql, values))
        .one(db)
        .await?
        .ok_or(RepoError::NotFound)
}

/// Whether [`create_admin`] made the user.
#[derive(Debug, Clone)]
pub enum Admin {
    Created(User),
    /// A user with this email exists already; nothing was changed.
    Exists(User),
}

/// Trims and lowercases an email and checks its shape (`local@domain.tld`).
pub fn normalize_email(raw: &str) -> Result<String, String> {
    let email = raw.trim().to_lowercase();
    let bad = || "is not a valid email address".to_string();
    if email.len() > 254
        || email
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '\u{202E}')
    {
        return Err(bad());
    }
    let (local, domain) = email.split_once('@').ok_or_else(bad)?;
    let domain_ok = domain.contains('.')
        && !domain.contains('@')
        && domain
            .split('.')
            .all(|label| !label.is_empty() && !label.starts_with('-') && !label.ends_with('-'));
    if local.is_empty() || local.len() > 64 || !domain_ok {
        return Err(bad());
    }
    Ok(email)
}

/// Bootstraps an administrator: a new user with the `admin` role; an email already taken
/// changes nothing (whatever that user's role). `email` is normalized ([`normalize_email`]).
pub async fn create_admin(
    db: &impl ConnectionTrait,
    email: &str,
    password_hash: &str,
) -> Result<Admin, RepoError> {
    let sql = format!(
        "INSERT INTO users (id, email, password_hash, role) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (email) DO NOTHING RETURNING {COLUMNS}"
    );
    let values = [
        UserId::new().into(),
        email.into(),
        password_hash.into(),
        Role::Admin.into(),
    ];
    if let Some(u) = User::find_by_statement(stmt(&sql, values)).one(db).await? {
        return Ok(Admin::Created(u));
    }
    find_user_by_email(db, email)
        .await?
        .map(Admin::Exists)
        .ok_or(RepoError::NotFound)
}

/// The user with this (already lowercased) email.
pub async fn find_user_by_email(
    db: &impl ConnectionTrait,
    email: &str,
) -> Result<Option<User>, RepoError> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE email = $1");
    Ok(User::find_by_statement(stmt(&sql, [email.into()]))
        .one(db)
        .await?)
}

/// The user with this id.
pub async fn find_user(db: &impl ConnectionTrait, id: UserId) -> Result<Option<User>, RepoError> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE id = $1");
    Ok(User::find_by_statement(stmt(&sql, [id.into()]))
        .one(db)
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_lowercased_and_checked() {
        assert_eq!(
            normalize_email("  Alice@Example.COM ").expect("ok"),
            "alice@example.com"
        );
        for bad in [
            "",
            "alice",
            "alice@",
            "@example.com",
            "a@b",
            "a b@example.com",
            "a@@example.com",
            "a@example..com",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad}");
        }
    }
}
