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
