//! Re-encrypting what is stored encrypted (LWA refresh and access tokens, webhook secrets)
//! under the current key after `AMP_ENCRYPTION_KEY` changed: the processes read with
//! either key meanwhile (`AMP_ENCRYPTION_KEY_PREVIOUS`), so the rotation runs while the
//! system runs. Each row is rewritten by compare-and-set on the bytes read: a value
//! another process rewrote meanwhile (with the current key) is left as it is.

use crate::crypto::Cipher;
use crate::repo::stmt;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, FromQueryResult};

/// What a rotation did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Rotated {
    /// Rows rewritten under the current key.
    pub rewritten: u64,
    /// Rows already under the current key.
    pub current: u64,
    /// Rows neither key opens (left as they are; the process reports them).
    pub unreadable: u64,
}

/// Rows read per statement.
const BATCH: i64 = 500;

#[derive(Debug, FromQueryResult)]
struct Sealed {
    id: uuid::Uuid,
    a: Vec<u8>,
    b: Option<Vec<u8>>,
}

/// A table's two encrypted columns (the second may be NULL).
struct Columns {
    table: &'static str,
    a: &'static str,
    b: &'static str,
}

const STORED: [Columns; 2] = [
    Columns {
        table: "amazon_connections",
        a: "refresh_token_enc",
        b: "access_token_enc",
    },
    Columns {
        table: "webhook_endpoints",
        a: "secret_enc",
        b: "previous_secret_enc",
    },
];

/// The value under the current key: `None` when it already is, `Err` when no key opens it.
fn reseal(cipher: &Cipher, sealed: &[u8]) -> Result<Option<Vec<u8>>, ()> {
    if cipher.is_current(sealed) {
        return Ok(None);
    }
    cipher
        .decrypt(sealed)
        .map(|plain| Some(cipher.encrypt(&plain)))
        .map_err(|_| ())
}

/// Rewrites every encrypted value that is not under `cipher`'s current key (opening it
/// with the previous key).
pub async fn rotate(db: &DatabaseConnection, cipher: &Cipher) -> Result<Rotated, DbErr> {
    let mut out = Rotated::default();
    for c in &STORED {
        let mut after = uuid::Uuid::nil();
        loop {
            let sql = format!(
                "SELECT id, {a} AS a, {b} AS b FROM {t} WHERE id > $1 ORDER BY id LIMIT $2",
                a = c.a,
                b = c.b,
                t = c.table
            );
            let rows = Sealed::find_by_statement(stmt(&sql, [after.into(), BATCH.into()]))
                .all(db)
                .await?;
            for r in &rows {
                let a = reseal(cipher, &r.a);
                let b = r.b.as_deref().map(|b| reseal(cipher, b)).transpose();
                let (Ok(a), Ok(b)) = (a, b) else {
                    out.unreadable += 1;
                    continue;
                };
                let b = b.flatten();
                if a.is_none() && b.is_none() {
                    out.current += 1;
                    continue;
                }
                let new_a = a.unwrap_or_else(|| r.a.clone());
                let new_b = b.or_else(|| r.b.clone());
                let sql = format!(
                    "UPDATE {t} SET {a} = $2, {b} = $3 WHERE id = $1 AND {a} = $4 AND {b} IS NOT DISTINCT FROM $5",
                    a = c.a,
                    b = c.b,
                    t = c.table
                );
                let n = db
                    .execute_raw(stmt(
                        &sql,
                        [
                            r.id.into(),
                            new_a.into(),
                            new_b.into(),
                            r.a.clone().into(),
                            r.b.clone().into(),
                        ],
                    ))
                    .await?
                    .rows_affected();
                // Zero: another process rewrote it meanwhile, under the current key.
                out.rewritten += n;
                out.current += 1 - n;
            }
            match rows.last() {
                Some(last) if rows.len() as i64 == BATCH => after = last.id,
                _ => break,
            }
        }
    }
    Ok(out)
}

/// Whether anything stored is still under another key than `cipher`'s current one.
pub async fn pending<C: ConnectionTrait>(db: &C, cipher: &Cipher) -> Result<u64, DbErr> {
    let mut n = 0;
    for c in &STORED {
        let sql = format!("SELECT id, {} AS a, {} AS b FROM {}", c.a, c.b, c.table);
        for r in Sealed::find_by_statement(stmt(&sql, [])).all(db).await? {
            let stale = |v: &[u8]| !cipher.is_current(v);
            if stale(&r.a) || r.b.as_deref().is_some_and(stale) {
                n += 1;
            }
        }
    }
    Ok(n)
}
