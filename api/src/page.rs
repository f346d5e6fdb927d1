//! Cursor pagination shared by the list endpoints: `?cursor=&limit=` in (limit default 50,
//! at most 500, checked by each endpoint's validator), `{items, next_cursor}` out, with
//! cursors signed per endpoint and user (`common::cursor`) so that one list's cursor opens
//! no other.

use crate::error::ApiError;
use chrono::{DateTime, Utc};
use common::cursor::CursorKey;
use uuid::Uuid;

/// The page size asked for, or the default (50).
pub fn limit(limit: Option<u32>) -> u64 {
    u64::from(limit.unwrap_or(50))
}

/// A cursor's scope: what is listed, and whose (a user's or a parent resource's id).
pub fn scope(what: &[u8], id: Uuid) -> Vec<u8> {
    let mut scope = what.to_vec();
    scope.extend_from_slice(id.as_bytes());
    scope
}

/// 422 naming `cursor`.
pub fn bad_cursor() -> ApiError {
    ApiError::field("cursor", "is not a cursor returned by this endpoint")
}

/// The `(created_at, id)` position a keyset cursor names; `None` for the first page (no
/// cursor, or an empty one).
pub fn open_key(
    cursors: &CursorKey,
    scope: &[u8],
    cursor: Option<String>,
) -> Result<Option<(DateTime<Utc>, Uuid)>, ApiError> {
    match cursor.as_deref().filter(|c| !c.is_empty()) {
        None => Ok(None),
        Some(c) => cursors.open_key(scope, c).map(Some).ok_or_else(bad_cursor),
    }
}

/// A row listed newest first: its keyset position.
pub trait Keyed {
    /// `(created_at, id)`.
    fn key(&self) -> (DateTime<Utc>, Uuid);
}

macro_rules! keyed {
    ($($t:ty),*) => {$(
        impl Keyed for $t {
            fn key(&self) -> (DateTime<Utc>, Uuid) {
                (self.created_at, self.id.0)
            }
        }
    )*};
}

keyed!(
    common::repo::accounts::Account,
    common::repo::instances::Instance,
    common::repo::workflows::Workflow,
    common::execution::ExecutionRow,
    common::batch::BatchRow
);

/// One keyset page, newest first: opens `cursor` in `scope`, reads `limit + 1` rows after
/// it with `read`, and answers the page with the next page's cursor (its last row's
/// position) when more remain.
pub async fn keyset<T: Keyed, E, Fut>(
    cursors: &CursorKey,
    scope: &[u8],
    (cursor, limit): (Option<String>, Option<u32>),
    read: impl FnOnce(Option<(DateTime<Utc>, Uuid)>, u64) -> Fut,
) -> Result<(Vec<T>, Option<String>), ApiError>
where
    Fut: Future<Output = Result<Vec<T>, E>>,
    ApiError: From<E>,
{
    let after = open_key(cursors, scope, cursor)?;
    let limit = self::limit(limit);
    let mut rows = read(after, limit + 1).await?;
    let next = next_cursor(&mut rows, limit, |r| {
        let (at, id) = r.key();
        cursors.sign_key(scope, at, id)
    });
    Ok((rows, next))
}

/// Cuts `rows`, read with `limit + 1`, to `limit`, and answers the cursor of the next
/// page (`sign` of the last row shown) when there is one.
pub fn next_cursor<T>(
    rows: &mut Vec<T>,
    limit: u64,
    sign: impl FnOnce(&T) -> String,
) -> Option<String> {
    let more = rows.len() as u64 > limit;
    rows.truncate(limit as usize);
    if more { rows.last().map(sign) } else { None }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_cursor_is_the_last_row_shown_only_when_more_remain() {
        let mut rows = vec![1, 2, 3];
        assert_eq!(
            next_cursor(&mut rows, 2, |r| r.to_string()),
            Some("2".into())
        );
        assert_eq!(rows, [1, 2]);
        let mut rows = vec![1, 2];
        assert_eq!(next_cursor(&mut rows, 2, |r| r.to_string()), None);
        assert_eq!(rows, [1, 2]);
    }

    #[test]
    fn a_cursor_opens_only_in_its_own_scope() {
        let key = CursorKey::derive(b"test secret");
        let at = DateTime::from_timestamp(1_700_000_000, 123_456_000).unwrap();
        let id = Uuid::new_v4();
        let a = scope(b"schedules", id);
        let c = key.sign_key(&a, at, id);
        assert_eq!(open_key(&key, &a, Some(c.clone())).unwrap(), Some((at, id)));
        assert_eq!(open_key(&key, &a, Some(String::new())).unwrap(), None);
        assert!(open_key(&key, &scope(b"webhooks", id), Some(c)).is_err());
    }
}
