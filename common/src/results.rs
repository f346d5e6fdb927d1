//! The result store: each execution's CSV in one file under `AMP_RESULTS_URL`
//! (`file:///…` or a plain path). Parts are streamed to disk and merged without ever
//! holding a result in memory; pages are read back from a byte cursor.

use bytes::Bytes;
use futures::{Stream, StreamExt};
use serde_json::Value;
use std::io::{BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use tokio::io::AsyncWriteExt;

#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    #[error("AMP_RESULTS_URL: {0}")]
    Config(String),
    #[error("result store I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("result CSV: {0}")]
    Csv(#[from] csv::Error),
    #[error("downloading a result part: {0}")]
    Download(String),
    #[error("bad cursor")]
    BadCursor,
}

#[derive(Debug, Clone)]
pub struct ResultStore {
    root: PathBuf,
}

/// What a finished result holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    pub location: String,
    pub columns: Vec<String>,
    pub rows: u64,
}

/// One page of rows; `next_cursor` is `None` on the last page.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
    pub next_cursor: Option<u64>,
}

impl ResultStore {
    /// `file:///abs/path`, or a plain (relative or absolute) path.
    pub fn from_url(url: &str) -> Result<Self, ResultsError> {
        let root = if let Some(rest) = url.strip_prefix("file://") {
            PathBuf::from(rest)
        } else if url.contains("://") {
            return Err(ResultsError::Config(format!(
                "`{url}`: only file:// URLs and plain paths are supported by this build"
            )));
        } else {
            PathBuf::from(url)
        };
        Ok(Self { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Starts writing the result of `name` (the execution id).
    pub async fn writer(&self, name: &str) -> Result<ResultWriter, ResultsError> {
        tokio::fs::create_dir_all(&self.root).await?;
        let tmp_dir = self
            .root
            .join(format!(".tmp-{name}-{}", uuid::Uuid::new_v4()));
        tokio::fs::create_dir_all(&tmp_dir).await?;
        Ok(ResultWriter {
            final_path: self.root.join(format!("{name}.csv")),
            tmp_dir,
            parts: Vec::new(),
        })
    }

    fn path_of(&self, location: &str) -> PathBuf {
        self.root.join(location)
    }

    /// Reads `limit` rows starting at byte `cursor` (None: the first row).
    pub async fn page(
        &self,
        location: &str,
        cursor: Option<u64>,
        limit: usize,
    ) -> Result<Page, ResultsError> {
        let path = self.path_of(location);
        tokio::task::spawn_blocking(move || read_page(&path, cursor, limit))
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))?
    }

    /// Opens the whole CSV for streaming.
    pub async fn open(&self, location: &str) -> Result<tokio::fs::File, ResultsError> {
        Ok(tokio::fs::File::open(self.path_of(location)).await?)
    }
}

fn read_page(path: &Path, cursor: Option<u64>, limit: usize) -> Result<Page, ResultsError> {
    let file = std::fs::File::open(path)?;
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(BufReader::new(file));
    let columns: Vec<String> = rdr.headers()?.iter().map(str::to_string).collect();
    let header_end = rdr.position().byte();
    let start = cursor.unwrap_or(header_end);
    if start < header_end {
        return Err(ResultsError::BadCursor);
    }
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    if start > len {
        return Err(ResultsError::BadCursor);
    }
    file.seek(SeekFrom::Start(start))?;
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(BufReader::new(file));
    let mut rows = Vec::with_capacity(limit.min(10_000));
    let mut record = csv::StringRecord::new();
    while rows.len() < limit && rdr.read_record(&mut record)? {
        rows.push(record.iter().map(str::to_string).collect());
    }
    let pos = start + rdr.position().byte();
    let more = rdr.read_record(&mut record)?;
    Ok(Page {
        columns,
        rows,
        next_cursor: more.then_some(pos),
    })
}

/// Writes a result part by part, then publishes it atomically.
pub struct ResultWriter {
    final_path: PathBuf,
    tmp_dir: PathBuf,
    parts: Vec<PathBuf>,
}

impl ResultWriter {
    /// Streams one downloaded CSV part to disk.
    pub async fn add_part<S, E>(&mut self, mut body: S) -> Result<(), ResultsError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let path = self.tmp_dir.join(format!("part-{}.csv", self.parts.len()));
        let mut f = tokio::fs::File::create(&path).await?;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| ResultsError::Download(e.to_string()))?;
            f.write_all(&chunk).await?;
        }
        f.flush().await?;
        self.parts.push(path);
        Ok(())
    }

    /// Discards what was written of a part that failed half-way (the caller retries it).
    pub async fn discard_last(&mut self) {
        if let Some(p) = self.parts.pop() {
            let _ = tokio::fs::remove_file(p).await;
        }
    }

    /// Merges the parts (one header), counts rows, and moves the file into place.
    pub async fn finish(self) -> Result<Written, ResultsError> {
        let tmp_dir = self.tmp_dir.clone();
        let out = tokio::task::spawn_blocking(move || {
            merge(&self.parts, &self.tmp_dir, &self.final_path)
        })
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))?;
        let _ = tokio::fs::remove_dir_all(&tmp_dir).await;
        out
    }
}

fn merge(parts: &[PathBuf], tmp_dir: &Path, final_path: &Path) -> Result<Written, ResultsError> {
    let merged = tmp_dir.join("merged.csv");
    let mut wtr = csv::Writer::from_path(&merged)?;
    let mut columns: Option<Vec<String>> = None;
    let mut rows = 0u64;
    let mut record = csv::ByteRecord::new();
    for part in parts {
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_path(part)?;
        let header: Vec<String> = rdr.headers()?.iter().map(str::to_string).collect();
        if columns.is_none() && !header.is_empty() {
            wtr.write_record(&header)?;
            columns = Some(header);
        }
        while rdr.read_byte_record(&mut record)? {
            wtr.write_byte_record(&record)?;
            rows += 1;
        }
    }
    let columns = columns.unwrap_or_default();
    if columns.is_empty() {
        // No part had a header: still publish a valid, empty CSV.
        wtr.write_record(std::iter::empty::<&str>())?;
    }
    wtr.flush()?;
    drop(wtr);
    std::fs::rename(&merged, final_path)?;
    let location = final_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(Written {
        location,
        columns,
        rows,
    })
}

/// Columns as stored on the execution row.
pub fn columns_json(columns: &[String]) -> Value {
    Value::Array(columns.iter().cloned().map(Value::String).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(s: &str) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Unpin {
        futures::stream::iter(vec![Ok(Bytes::from(s.to_string()))])
    }

    #[tokio::test]
    async fn merges_parts_and_pages_back_everything() {
        let dir = std::env::temp_dir().join(format!("amp-results-{}", uuid::Uuid::new_v4()));
        let store = ResultStore::from_url(dir.to_str().unwrap()).unwrap();
        let mut w = store.writer("exec").await.unwrap();
        w.add_part(part("a,b\n1,\"x,y\"\n2,\"multi\nline\"\n"))
            .await
            .unwrap();
        w.add_part(part("a,b\n3,z\n")).await.unwrap();
        let written = w.finish().await.unwrap();
        assert_eq!(written.rows, 3);
        assert_eq!(written.columns, vec!["a", "b"]);
        let mut all = Vec::new();
        let mut cursor = None;
        loop {
            let p = store.page(&written.location, cursor, 2).await.unwrap();
            all.extend(p.rows);
            match p.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(
            all,
            vec![vec!["1", "x,y"], vec!["2", "multi\nline"], vec!["3", "z"]]
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
