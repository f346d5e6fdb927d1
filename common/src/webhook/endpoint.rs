//! The `webhook_endpoints` table: a user's endpoints, each with its URL, the event types
//! it subscribes to, and its signing secret encrypted at rest (like the LWA tokens), the
//! previous one kept for 24 h after a rotation. Every query is scoped to its owner.

use super::sign::Secret;
use crate::crypto::Cipher;
use crate::event::EventType;
use crate::ids::{EndpointId, UserId};
use crate::repo::stmt;
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, FromQueryResult};
use serde_json::{Value, json};

/// How long a rotated-out secret still signs deliveries.
pub const ROTATION_OVERLAP: chrono::Duration = chrono::Duration::hours(24);

/// An endpoint as stored (its secrets encrypted).
#[derive(Debug, Clone, FromQueryResult)]
pub struct EndpointRow {
    pub id: EndpointId,
    pub user_id: UserId,
    pub url: String,
    pub description: Option<String>,
    /// The subscribed types, a JSON array of strings.
    pub event_types: Value,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub failing_since: Option<DateTime<Utc>>,
    pub last_success_at: Option<DateTime<Utc>>,
    pub rotated_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub(crate) const COLUMNS: &str = "id, user_id, url, description, to_jsonb(event_types) AS event_types, enabled, \
    disabled_reason, failing_since, last_success_at, rotated_at, created_at, updated_at";

impl EndpointRow {
    /// The subscribed types.
    pub fn types(&self) -> Vec<EventType> {
        serde_json::from_value(self.event_types.clone()).unwrap_or_default()
    }

    /// The endpoint as `GET /webhooks/{id}` shows it (also the payload of its events):
    /// never a secret.
    pub fn public_json(&self) -> Value {
        json!({
            "id": self.id,
            "url": self.url,
            "description": self.description,
            "event_types": self.event_types,
            "enabled": self.enabled,
            "disabled_reason": self.disabled_reason,
            "failing_since": self.failing_since,
            "last_success_at": self.last_success_at,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        })
    }
}

/// Why an endpoint was not written.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error("webhook endpoint not found")]
    NotFound,
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// What an endpoint is made of (checked by the API).
#[derive(Debug, Clone)]
pub struct EndpointSpec {
    pub url: String,
    pub event_types: Vec<EventType>,
    pub description: Option<String>,
    pub enabled: bool,
}

fn types_array(types: &[EventType]) -> Value {
    Value::Array(types.iter().map(|t| Value::from(t.as_str())).collect())
}

/// Creates an endpoint with a new secret; returns it and the secret (shown once).
pub async fn create(
    db: &DatabaseConnection,
    cipher: &Cipher,
    user: UserId,
    spec: &EndpointSpec,
) -> Result<(EndpointRow, Secret), EndpointError> {
    let secret = Secret::generate();
    let sql = format!(
        "INSERT INTO webhook_endpoints (id, user_id, url, description, event_types, enabled, secret_enc) \
         SELECT $1, $2, $3, $4, array(SELECT jsonb_array_elements_text($5::jsonb)), $6, $7 \
         RETURNING {COLUMNS}"
    );
    let row = EndpointRow::find_by_statement(stmt(
        &sql,
        [
            EndpointId::new().into(),
            user.into(),
            spec.url.clone().into(),
            spec.description.clone().into(),
            types_array(&spec.event_types).into(),
            spec.enabled.into(),
            cipher.encrypt(secret.text().as_bytes()).into(),
        ],
    ))
    .one(db)
    .await?
    .ok_or(EndpointError::NotFound)?;
    Ok((row, secret))
}

/// The user's endpoint (another user's reads as missing).
pub async fn get<C: ConnectionTrait>(
    conn: &C,
    user: UserId,
    id: EndpointId,
) -> Result<Option<EndpointRow>, DbErr> {
    let sql = format!("SELECT {COLUMNS} FROM webhook_endpoints WHERE id = $1 AND user_id = $2");
    EndpointRow::find_by_statement(stmt(&sql, [id.into(), user.into()]))
        .one(conn)
        .await
}

/// A page of the user's endpoints, newest first, after `(created_at, id)`.
pub async fn list(
    db: &DatabaseConnection,
    user: UserId,
    after: Option<(DateTime<Utc>, EndpointId)>,
    limit: u64,
) -> Result<Vec<EndpointRow>, DbErr> {
    let (at, id) = after.map_or((None, None), |(a, i)| (Some(a), Some(i)));
    let sql = format!(
        "SELECT {COLUMNS} FROM webhook_endpoints WHERE user_id = $1 \
           AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3)) \
         ORDER BY created_at DESC, id DESC LIMIT $4"
    );
    EndpointRow::find_by_statement(stmt(
        &sql,
        [user.into(), at.into(), id.into(), (limit as i64).into()],
    ))
    .all(db)
    .await
}

/// A change of an endpoint; `None` keeps a field. `description: Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct EndpointPatch {
    pub url: Option<String>,
    pub event_types: Option<Vec<EventType>>,
    pub description: Option<Option<String>>,
    pub enabled: Option<bool>,
}

/// Applies a change. Enabling an endpoint clears why it was disabled and its failing
/// streak (its skipped deliveries stay skipped: `recover` sends them).
pub async fn update(
    db: &DatabaseConnection,
    user: UserId,
    id: EndpointId,
    p: EndpointPatch,
) -> Result<EndpointRow, EndpointError> {
    let (set_description, description) = match p.description {
        Some(d) => (true, d),
        None => (false, None),
    };
    let sql = format!(
        "UPDATE webhook_endpoints SET \
           url = coalesce($3, url), \
           event_types = CASE WHEN $4::jsonb IS NULL THEN event_types \
                              ELSE array(SELECT jsonb_array_elements_text($4::jsonb)) END, \
           description = CASE WHEN $5 THEN $6 ELSE description END, \
           enabled = coalesce($7, enabled), \
           disabled_reason = CASE WHEN $7 THEN NULL ELSE disabled_reason END, \
           failing_since = CASE WHEN $7 AND NOT enabled THEN NULL ELSE failing_since END, \
           updated_at = now() \
         WHERE id = $1 AND user_id = $2 RETURNING {COLUMNS}"
    );
    EndpointRow::find_by_statement(stmt(
        &sql,
        [
            id.into(),
            user.into(),
            p.url.into(),
            p.event_types.map(|t| types_array(&t)).into(),
            set_description.into(),
            description.into(),
            p.enabled.into(),
        ],
    ))
    .one(db)
    .await?
    .ok_or(EndpointError::NotFound)
}

/// Deletes an endpoint (its deliveries go with it).
pub async fn delete(db: &DatabaseConnection, user: UserId, id: EndpointId) -> Result<bool, DbErr> {
    let r = db
        .execute_raw(stmt(
            "DELETE FROM webhook_endpoints WHERE id = $1 AND user_id = $2",
            [id.into(), user.into()],
        ))
        .await?;
    Ok(r.rows_affected() == 1)
}

/// A new secret; the current one keeps signing (beside it) for [`ROTATION_OVERLAP`].
pub async fn rotate_secret(
    db: &DatabaseConnection,
    cipher: &Cipher,
    user: UserId,
    id: EndpointId,
) -> Result<Secret, EndpointError> {
    let secret = Secret::generate();
    let r = db
        .execute_raw(stmt(
            "UPDATE webhook_endpoints SET previous_secret_enc = secret_enc, secret_enc = $3, rotated_at = now(), \
               updated_at = now() WHERE id = $1 AND user_id = $2",
            [
                id.into(),
                user.into(),
                cipher.encrypt(secret.text().as_bytes()).into(),
            ],
        ))
        .await?;
    if r.rows_affected() == 0 {
        return Err(EndpointError::NotFound);
    }
    Ok(secret)
}

/// The secrets that sign a delivery now: the current one, then the previous one while a
/// rotation is under way. A secret that no longer decrypts (a rotated encryption key
/// without its predecessor) is left out.
pub fn signing_secrets(
    cipher: &Cipher,
    current: &[u8],
    previous: Option<&[u8]>,
    rotated_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Vec<Secret> {
    let open = |enc: &[u8]| {
        cipher
            .decrypt_str(enc)
            .ok()
            .and_then(|t| Secret::parse(&t).ok())
    };
    let mut out: Vec<Secret> = open(current).into_iter().collect();
    if let (Some(prev), Some(at)) = (previous, rotated_at)
        && now < at + ROTATION_OVERLAP
    {
        out.extend(open(prev));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_previous_secret_signs_for_a_day_after_a_rotation() {
        let cipher = Cipher::from_key_bytes(&[7u8; 32]).unwrap();
        let (a, b) = (Secret::generate(), Secret::generate());
        let (ea, eb) = (
            cipher.encrypt(a.text().as_bytes()),
            cipher.encrypt(b.text().as_bytes()),
        );
        let now = Utc::now();
        let rotated = now - chrono::Duration::hours(23);
        assert_eq!(
            signing_secrets(&cipher, &eb, Some(&ea), Some(rotated), now),
            [b.clone(), a.clone()]
        );
        let long_ago = now - chrono::Duration::hours(25);
        let only_new = signing_secrets(&cipher, &eb, Some(&ea), Some(long_ago), now);
        assert_eq!(only_new, std::slice::from_ref(&b));
        assert_eq!(signing_secrets(&cipher, &eb, None, None, now), [b]);
    }
}
