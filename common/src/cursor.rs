//! Opaque, signed page cursors. A cursor is the position it names (any bytes) with an
//! HMAC-SHA256 tag over a scope (what it pages, e.g. one execution's result) and the
//! position, base64url-encoded: a client cannot forge or edit one, nor use one from
//! another listing; a tampered cursor is refused, never followed.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

const VERSION: u8 = 1;
const TAG_LEN: usize = 16;

/// Signs and opens cursors with one key.
#[derive(Clone)]
pub struct CursorKey([u8; 32]);

impl std::fmt::Debug for CursorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorKey(***)")
    }
}

impl CursorKey {
    /// A key derived from a process secret (the JWT secret), so every replica agrees.
    pub fn derive(secret: &[u8]) -> Self {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
        mac.update(b"recomamp cursor key v1");
        Self(mac.finalize().into_bytes().into())
    }

    fn tag(&self, scope: &[u8], position: &[u8]) -> [u8; TAG_LEN] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(&[VERSION]);
        mac.update(&(scope.len() as u64).to_be_bytes());
        mac.update(scope);
        mac.update(position);
        let full = mac.finalize().into_bytes();
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&full[..TAG_LEN]);
        tag
    }

    /// The cursor naming `position` within `scope`.
    pub fn sign(&self, scope: &[u8], position: &[u8]) -> String {
        let mut raw = Vec::with_capacity(1 + position.len() + TAG_LEN);
        raw.push(VERSION);
        raw.extend_from_slice(position);
        raw.extend_from_slice(&self.tag(scope, position));
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// The position a cursor of `scope` names; `None` when it was not made by this key for
    /// this scope (edited, truncated, or from elsewhere).
    pub fn open(&self, scope: &[u8], cursor: &str) -> Option<Vec<u8>> {
        let raw = URL_SAFE_NO_PAD.decode(cursor.trim()).ok()?;
        if raw.len() < 1 + TAG_LEN || raw[0] != VERSION {
            return None;
        }
        let (body, tag) = raw.split_at(raw.len() - TAG_LEN);
        let position = &body[1..];
        let expected = self.tag(scope, position);
        // Constant-time comparison.
        let diff = expected
            .iter()
            .zip(tag)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        (diff == 0).then(|| position.to_vec())
    }

    /// A cursor naming a byte offset.
    pub fn sign_offset(&self, scope: &[u8], offset: u64) -> String {
        self.sign(scope, &offset.to_be_bytes())
    }

    /// A cursor naming a keyset position: an instant and an id (`(created_at, id)`).
    pub fn sign_key(
        &self,
        scope: &[u8],
        at: chrono::DateTime<chrono::Utc>,
        id: uuid::Uuid,
    ) -> String {
        let mut p = at.timestamp_micros().to_be_bytes().to_vec();
        p.extend_from_slice(id.as_bytes());
        self.sign(scope, &p)
    }

    /// The position a cursor of [`CursorKey::sign_key`] names.
    pub fn open_key(
        &self,
        scope: &[u8],
        cursor: &str,
    ) -> Option<(chrono::DateTime<chrono::Utc>, uuid::Uuid)> {
        let p = self.open(scope, cursor)?;
        if p.len() != 24 {
            return None;
        }
        let micros = i64::from_be_bytes(p[..8].try_into().ok()?);
        let at = chrono::DateTime::from_timestamp_micros(micros)?;
        Some((at, uuid::Uuid::from_slice(&p[8..]).ok()?))
    }

    /// The byte offset a cursor of [`CursorKey::sign_offset`] names.
    pub fn open_offset(&self, scope: &[u8], cursor: &str) -> Option<u64> {
        let p = self.open(scope, cursor)?;
        Some(u64::from_be_bytes(p.try_into().ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyset_cursors_round_trip_in_their_scope_only() {
        let k = CursorKey::derive(b"secret");
        let at = chrono::DateTime::from_timestamp_micros(1_800_000_000_123_456).unwrap();
        let id = uuid::Uuid::new_v4();
        let c = k.sign_key(b"user-1", at, id);
        assert_eq!(k.open_key(b"user-1", &c), Some((at, id)));
        assert_eq!(k.open_key(b"user-2", &c), None);
        assert_eq!(k.open_key(b"user-1", &k.sign_offset(b"user-1", 7)), None);
    }

    #[test]
    fn cursors_round_trip_and_refuse_tampering() {
        let k = CursorKey::derive(b"secret");
        let c = k.sign_offset(b"exec-1", 4096);
        assert_eq!(k.open_offset(b"exec-1", &c), Some(4096));
        // Another scope, another key, or any edited byte: refused.
        assert_eq!(k.open_offset(b"exec-2", &c), None);
        assert_eq!(CursorKey::derive(b"other").open_offset(b"exec-1", &c), None);
        let mut raw = URL_SAFE_NO_PAD.decode(&c).unwrap();
        raw[3] ^= 1;
        assert_eq!(k.open_offset(b"exec-1", &URL_SAFE_NO_PAD.encode(raw)), None);
        for bad in ["", "4096", "!!!", &c[..c.len() - 2]] {
            assert_eq!(k.open_offset(b"exec-1", bad), None, "{bad}");
        }
    }
}
