//! A collection's combined results, the data of the front end's dashboards: every
//! succeeded window's rows, oldest window first, each with a leading `window_start` column
//! (`collection_window_start` when the query returns a `window_start` of its own). JSON
//! pages continue across windows; the CSV streams window after window.

use super::row::WindowStatus;
use crate::ids::{CollectionId, UserId};
use crate::repo::stmt;
use crate::results::{ResultStore, ResultsError};
use crate::time_window::AMC_FORMAT;
use bytes::Bytes;
use chrono::NaiveDateTime;
use futures::stream::{self, BoxStream, StreamExt};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, FromQueryResult};

/// The added column's name.
pub const WINDOW_COLUMN: &str = "window_start";
/// Its name when the query returns a `window_start` of its own.
pub const WINDOW_COLUMN_ALT: &str = "collection_window_start";

/// A page of combined rows. `next` is where the next page starts: a window's position and
/// a byte offset in its result (0: its first row).
#[derive(Debug, Clone, PartialEq)]
pub struct CombinedPage {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
    pub next: Option<(i32, u64)>,
}

/// Why combined results could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CombinedError {
    #[error("collection not found")]
    NotFound,
    #[error("the cursor does not point into this collection's results")]
    BadCursor,
    /// A succeeded window's stored result was removed past `AMP_RESULTS_RETENTION`: the
    /// combined result would miss its rows.
    #[error("the results of a window starting {0} expired, past the retention of stored results")]
    Expired(String),
    #[error(transparent)]
    Db(#[from] DbErr),
    #[error(transparent)]
    Results(#[from] ResultsError),
}

#[derive(Debug, Clone, FromQueryResult)]
struct Done {
    position: i32,
    window_start: NaiveDateTime,
    result_location: String,
    expired: bool,
}

/// The succeeded windows of the user's collection from `position` on, oldest first.
async fn succeeded(
    db: &DatabaseConnection,
    user: UserId,
    id: CollectionId,
    position: i32,
) -> Result<Vec<Done>, CombinedError> {
    let owned = db
        .query_one_raw(stmt(
            "SELECT 1 AS one FROM collections WHERE id = $1 AND user_id = $2",
            [id.into(), user.into()],
        ))
        .await?;
    if owned.is_none() {
        return Err(CombinedError::NotFound);
    }
    let done = Done::find_by_statement(stmt(
        "SELECT w.position, w.window_start, coalesce(e.result_location, '') AS result_location, \
           e.results_expired_at IS NOT NULL AS expired FROM collection_windows w \
         JOIN executions e ON e.id = w.execution_id \
         WHERE w.collection_id = $1 AND w.status = $2 AND w.position >= $3 \
           AND (e.result_location IS NOT NULL OR e.results_expired_at IS NOT NULL) \
         ORDER BY w.position",
        [id.into(), WindowStatus::Succeeded.into(), position.into()],
    ))
    .all(db)
    .await?;
    if let Some(w) = done.iter().find(|w| w.expired) {
        return Err(CombinedError::Expired(label(w.window_start)));
    }
    Ok(done)
}

/// The combined columns: the window's column, then the query's.
fn combined_columns(columns: Vec<String>) -> Vec<String> {
    let name = if columns.iter().any(|c| c == WINDOW_COLUMN) {
        WINDOW_COLUMN_ALT
    } else {
        WINDOW_COLUMN
    };
    std::iter::once(name.to_owned()).chain(columns).collect()
}

fn label(t: NaiveDateTime) -> String {
    t.format(AMC_FORMAT).to_string()
}

/// Which page: up to `limit` rows from `cursor` (`None`: the first row).
#[derive(Debug, Clone, Copy)]
pub struct PageAt {
    pub cursor: Option<(i32, u64)>,
    pub limit: usize,
}

/// A page of combined rows.
pub async fn combined_page(
    db: &DatabaseConnection,
    store: &ResultStore,
    user: UserId,
    id: CollectionId,
    PageAt { cursor, limit }: PageAt,
) -> Result<CombinedPage, CombinedError> {
    let (from, offset) = cursor.unwrap_or((0, 0));
    let windows = succeeded(db, user, id, from).await?;
    if cursor.is_some() && windows.first().is_none_or(|w| w.position != from) {
        return Err(CombinedError::BadCursor);
    }
    let mut columns = None;
    let mut rows = Vec::new();
    for (i, w) in windows.iter().enumerate() {
        let at = (w.position == from && offset > 0).then_some(offset);
        let page = store
            .page(&w.result_location, at, limit - rows.len())
            .await
            .map_err(|e| match e {
                ResultsError::BadCursor => CombinedError::BadCursor,
                other => other.into(),
            })?;
        let start = label(w.window_start);
        columns.get_or_insert(page.columns);
        rows.extend(page.rows.into_iter().map(|r| {
            let mut row = Vec::with_capacity(r.len() + 1);
            row.push(start.clone());
            row.extend(r);
            row
        }));
        if let Some(next) = page.next_cursor {
            return Ok(CombinedPage {
                columns: combined_columns(columns.unwrap_or_default()),
                rows,
                next: Some((w.position, next)),
            });
        }
        if rows.len() == limit {
            return Ok(CombinedPage {
                columns: combined_columns(columns.unwrap_or_default()),
                rows,
                next: windows.get(i + 1).map(|n| (n.position, 0)),
            });
        }
    }
    Ok(CombinedPage {
        columns: combined_columns(columns.unwrap_or_default()),
        rows,
        next: None,
    })
}

/// Rows written per chunk of the CSV stream.
const ROWS_PER_CHUNK: usize = 1_000;

struct CsvState {
    store: ResultStore,
    windows: std::vec::IntoIter<Done>,
    current: Option<(String, crate::results::Records)>,
    header_done: bool,
    failed: bool,
}

fn csv_line(fields: &[String]) -> Vec<u8> {
    let mut w = csv::WriterBuilder::new().from_writer(Vec::new());
    // Writing into a Vec cannot fail.
    let _ = w.write_record(fields);
    w.into_inner().unwrap_or_default()
}

/// The whole combined result as CSV, streamed (the header is the first window's, with the
/// window's column first). `NotFound` before anything is streamed when the collection is
/// not the user's.
pub async fn combined_csv(
    db: &DatabaseConnection,
    store: &ResultStore,
    user: UserId,
    id: CollectionId,
) -> Result<BoxStream<'static, std::io::Result<Bytes>>, CombinedError> {
    let windows = succeeded(db, user, id, 0).await?;
    let state = CsvState {
        store: store.clone(),
        windows: windows.into_iter(),
        current: None,
        header_done: false,
        failed: false,
    };
    Ok(stream::unfold(state, |mut s| async move {
        if s.failed {
            return None;
        }
        match next_chunk(&mut s).await {
            Ok(Some(chunk)) => Some((Ok(chunk), s)),
            Ok(None) => None,
            Err(e) => {
                s.failed = true;
                Some((Err(std::io::Error::other(e)), s))
            }
        }
    })
    .boxed())
}

async fn next_chunk(s: &mut CsvState) -> Result<Option<Bytes>, ResultsError> {
    let mut out = Vec::new();
    let mut rows = 0;
    loop {
        if s.current.is_none() {
            let Some(w) = s.windows.next() else {
                if !s.header_done {
                    s.header_done = true;
                    out.extend(csv_line(&combined_columns(Vec::new())));
                }
                break;
            };
            let mut records = s.store.records(&w.result_location).await?;
            let header = records.next().await?.unwrap_or_default();
            if !s.header_done {
                s.header_done = true;
                out.extend(csv_line(&combined_columns(header)));
            }
            s.current = Some((label(w.window_start), records));
        }
        let Some((start, records)) = s.current.as_mut() else {
            break;
        };
        match records.next().await? {
            Some(r) => {
                let mut row = Vec::with_capacity(r.len() + 1);
                row.push(start.clone());
                row.extend(r);
                out.extend(csv_line(&row));
                rows += 1;
                if rows == ROWS_PER_CHUNK {
                    break;
                }
            }
            None => s.current = None,
        }
    }
    Ok((!out.is_empty()).then(|| Bytes::from(out)))
}
