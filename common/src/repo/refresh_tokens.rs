//! Refresh tokens: stored as SHA-256 hashes, rotated on use, grouped in families so a
//! reused (already rotated) token revokes the whole family (reuse detection).

use super::{RepoError, stmt};
use crate::ids::UserId;
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, FromQueryResult, TransactionTrait};
use uuid::Uuid;

/// What presenting a refresh token led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// The token was live: it is now revoked and replaced by the new one.
    Rotated { user_id: UserId, family_id: Uuid },
    /// The token had already been used or revoked: its whole family is now revoked.
    Reused { user_id: UserId, family_id: Uuid },
    /// No such token, or it expired.
    Invalid,
}

#[derive(Debug, FromQueryResult)]
struct TokenRow {
    id: Uuid,
    user_id: UserId,
    family_id: Uuid,
    expires_at: DateTime<Utc>,
    revoked_at: Option<DateTime<Utc>>,
}

/// Stores the hash of a new refresh token of `family_id`; returns the row id.
pub async fn insert_refresh_token(
    db: &impl ConnectionTrait,
    user_id: UserId,
    family_id: Uuid,
    token_hash: &str,
    expires_at: DateTime<Utc>,
) -> Result<Uuid, RepoError> {
    let id = Uuid::now_v7();
    db.execute_raw(stmt(
        "INSERT INTO refresh_tokens (id, user_id, family_id, token_hash, expires_at) VALUES ($1, $2, $3, $4, $5)",
        [id.into(), user_id.0.into(), family_id.into(), token_hash.into(), expires_at.into()],
    ))
    .await?;
    Ok(id)
}

/// Presents the token with hash `old_hash`: a live one is revoked and replaced (same family)
/// by `new_hash`; a revoked one revokes its whole family. Runs in one transaction with the
/// old row locked, so two concurrent rotations of one token cannot both succeed.
pub async fn rotate_refresh_token(
    db: &DatabaseConnection,
    old_hash: &str,
    new_hash: &str,
    new_expires_at: DateTime<Utc>,
) -> Result<Rotation, RepoError> {
    let txn = db.begin().await?;
    let row = TokenRow::find_by_statement(stmt(
        "SELECT id, user_id, family_id, expires_at, revoked_at FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE",
        [old_hash.into()],
    ))
    .one(&txn)
    .await?;
    let Some(row) = row else {
        return Ok(Rotation::Invalid);
    };
    let user_id = row.user_id;
    if row.revoked_at.is_some() {
        revoke_family(&txn, row.family_id).await?;
        txn.commit().await?;
        return Ok(Rotation::Reused {
            user_id,
            family_id: row.family_id,
        });
    }
    if row.expires_at <= Utc::now() {
        return Ok(Rotation::Invalid);
    }
    let new_id =
        insert_refresh_token(&txn, user_id, row.family_id, new_hash, new_expires_at).await?;
    txn.execute_raw(stmt(
        "UPDATE refresh_tokens SET revoked_at = now(), replaced_by = $2 WHERE id = $1",
        [row.id.into(), new_id.into()],
    ))
    .await?;
    txn.commit().await?;
    Ok(Rotation::Rotated {
        user_id,
        family_id: row.family_id,
    })
}

/// Revokes every live token of a family.
pub async fn revoke_family(db: &impl ConnectionTrait, family_id: Uuid) -> Result<u64, RepoError> {
    let r = db
        .execute_raw(stmt(
            "UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL",
            [family_id.into()],
        ))
        .await?;
    Ok(r.rows_affected())
}
