//! The result store: each execution's CSV is one object in an [`object_store`] under
//! `AMP_RESULTS_URL` (a plain path or `file://` folder, or `s3://bucket/prefix` with
//! credentials from the standard `AWS_*` variables). Parts are streamed
//! into one multipart upload (the first part byte for byte, later parts without their
//! header; rows counted and column types inferred on the way, see
//! [`crate::result_types`]) and pages are read back from a byte cursor; nothing ever holds
//! a part or a whole result in memory.

use crate::result_types::{ColumnType, ResultColumns, TypeInference};
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt, TryStreamExt};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt, WriteMultipart};
use serde_json::Value;
use std::sync::Arc;

/// Upload part size for local folders (any size works there; small keeps memory low).
const LOCAL_PART_SIZE: usize = 1 << 20;
/// Upload part size for cloud stores: S3's minimum part size.
const REMOTE_PART_SIZE: usize = 5 << 20;
/// Parts uploading at once; with the part being filled, bounds the memory of a writer.
const PARTS_IN_FLIGHT: usize = 2;
/// Variable prefixes handed to `parse_url_opts` (unknown keys are ignored there).
const CREDENTIAL_ENV_PREFIXES: [&str; 3] = ["AWS_", "GOOGLE_", "AZURE_"];

#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    #[error("AMP_RESULTS_URL: {0}")]
    Config(String),
    #[error("result store: {0}")]
    Store(#[from] object_store::Error),
    #[error("result store I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("result CSV: {0}")]
    Csv(#[from] csv::Error),
    #[error("downloading a result part: {0}")]
    Download(String),
    #[error("bad cursor")]
    BadCursor,
}

impl ResultsError {
    /// The stored object is not there (removed by retention).
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            ResultsError::Store(object_store::Error::NotFound { .. })
        )
    }
}

/// Where results live; cheap to clone.
#[derive(Debug, Clone)]
pub struct ResultStore {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    part_size: usize,
}

/// What a finished result holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    pub location: String,
    pub columns: Vec<String>,
    /// Each column's type, inferred over every row.
    pub types: Vec<ColumnType>,
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
    /// A plain (relative or absolute) path or `file:///abs/path` (the folder is created),
    /// or any URL `object_store::parse_url_opts` knows in this build (`s3://`, `s3a://`,
    /// `https://s3.<region>.amazonaws.com/…`, `memory:///`).
    pub fn from_url(url: &str) -> Result<Self, ResultsError> {
        let url = url.trim();
        if url.is_empty() {
            return Err(ResultsError::Config("is empty".into()));
        }
        if let Some(dir) = url.strip_prefix("file://") {
            Self::local(dir)
        } else if url.contains("://") {
            Self::remote(url)
        } else {
            Self::local(url)
        }
    }

    fn local(dir: &str) -> Result<Self, ResultsError> {
        let bad = |e: &dyn std::fmt::Display| ResultsError::Config(format!("`{dir}`: {e}"));
        std::fs::create_dir_all(dir).map_err(|e| bad(&e))?;
        let fs = LocalFileSystem::new_with_prefix(dir).map_err(|e| bad(&e))?;
        Ok(Self {
            store: Arc::new(fs),
            prefix: Path::default(),
            part_size: LOCAL_PART_SIZE,
        })
    }

    fn remote(raw: &str) -> Result<Self, ResultsError> {
        let bad = |e: &dyn std::fmt::Display| ResultsError::Config(format!("`{raw}`: {e}"));
        let url = url::Url::parse(raw).map_err(|e| bad(&e))?;
        let options = std::env::vars()
            .filter(|(k, _)| CREDENTIAL_ENV_PREFIXES.iter().any(|p| k.starts_with(p)));
        let (store, prefix) = object_store::parse_url_opts(&url, options).map_err(|e| bad(&e))?;
        Ok(Self {
            store: Arc::from(store),
            prefix,
            part_size: REMOTE_PART_SIZE,
        })
    }

    /// The object path of a stored `location` (relative to the URL's prefix).
    fn path_of(&self, location: &str) -> Path {
        let location = Path::from(location);
        self.prefix.parts().chain(location.parts()).collect()
    }

    /// Starts writing the result of `name` (the execution id) as `<name>.csv`.
    pub async fn writer(&self, name: &str) -> Result<ResultWriter, ResultsError> {
        let location = format!("{name}.csv");
        let upload = self.store.put_multipart(&self.path_of(&location)).await?;
        Ok(ResultWriter {
            upload: WriteMultipart::new_with_chunk_size(upload, self.part_size),
            location,
            columns: None,
            types: TypeInference::default(),
            rows: 0,
            last_byte: None,
        })
    }

    /// Reads `limit` rows starting at byte `cursor` (None: the first row).
    pub async fn page(
        &self,
        location: &str,
        cursor: Option<u64>,
        limit: usize,
    ) -> Result<Page, ResultsError> {
        let path = self.path_of(location);
        let whole = self.store.get(&path).await?;
        let size = whole.meta.size;
        let mut reader = RecordReader::new(whole.into_stream(), 0);
        let Some(columns) = reader.next_record(true).await? else {
            return Ok(Page {
                columns: Vec::new(),
                rows: Vec::new(),
                next_cursor: None,
            });
        };
        if let Some(at) = cursor {
            if at < reader.offset() || at >= size {
                return Err(ResultsError::BadCursor);
            }
            let options = GetOptions::new().with_range(Some(GetRange::Offset(at)));
            let rest = self.store.get_opts(&path, options).await?;
            reader = RecordReader::new(rest.into_stream(), at);
        }
        let mut rows = Vec::with_capacity(limit.min(10_000));
        while rows.len() < limit {
            match reader.next_record(true).await? {
                Some(row) => rows.push(row),
                None => break,
            }
        }
        let end = reader.offset();
        let more = rows.len() == limit && reader.next_record(false).await?.is_some();
        Ok(Page {
            columns,
            rows,
            next_cursor: more.then_some(end),
        })
    }

    /// The stored result's records one by one, its header first.
    pub async fn records(&self, location: &str) -> Result<Records, ResultsError> {
        let got = self.store.get(&self.path_of(location)).await?;
        Ok(Records(RecordReader::new(got.into_stream(), 0)))
    }

    /// Removes a stored result; one already gone is not an error.
    pub async fn delete(&self, location: &str) -> Result<(), ResultsError> {
        match self.store.delete(&self.path_of(location)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The whole CSV as a stream of chunks.
    pub async fn open(
        &self,
        location: &str,
    ) -> Result<BoxStream<'static, std::io::Result<Bytes>>, ResultsError> {
        let got = self.store.get(&self.path_of(location)).await?;
        Ok(got.into_stream().map_err(std::io::Error::other).boxed())
    }
}

/// Streams a result part by part into one upload; the object appears on [`Self::finish`].
pub struct ResultWriter {
    upload: WriteMultipart,
    location: String,
    columns: Option<Vec<String>>,
    types: TypeInference,
    rows: u64,
    last_byte: Option<u8>,
}

impl ResultWriter {
    /// Streams one downloaded CSV part (with its header line) into the result.
    pub async fn add_part<S, E>(&mut self, mut body: S) -> Result<(), ResultsError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let mut part = PartState::new(self.columns.is_none());
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| ResultsError::Download(e.to_string()))?;
            if chunk.is_empty() {
                continue;
            }
            self.feed(&mut part, chunk)?;
            self.upload.wait_for_capacity(PARTS_IN_FLIGHT).await?;
        }
        self.feed(&mut part, Bytes::new())
    }

    /// Scans `chunk` (empty: end of the part), forwarding all of the first part and
    /// everything after the header of later ones.
    fn feed(&mut self, part: &mut PartState, chunk: Bytes) -> Result<(), ResultsError> {
        let eof = chunk.is_empty();
        let mut pos = 0;
        let mut data_from = (part.verbatim || !part.in_header).then_some(0);
        loop {
            if !eof && pos == chunk.len() {
                break;
            }
            let (step, n) = part.splitter.step(&chunk[pos..], true);
            pos += n;
            match step {
                Step::NeedInput | Step::End => break,
                Step::Record(fields) if part.in_header => {
                    part.in_header = false;
                    if !part.verbatim {
                        data_from = Some(pos);
                    }
                    self.header(fields);
                }
                Step::Record(fields) => {
                    self.rows += 1;
                    self.types.observe(&fields);
                }
            }
        }
        let Some(mut from) = data_from.filter(|&from| from < chunk.len()) else {
            return Ok(());
        };
        if !part.data_started {
            // Drop the line breaks that separate the header from the first row.
            while from < chunk.len() && matches!(chunk[from], b'\r' | b'\n') {
                from += 1;
            }
            if from == chunk.len() {
                return Ok(());
            }
            part.data_started = true;
            if self.last_byte.is_some_and(|b| b != b'\n' && b != b'\r') {
                self.upload.put(Bytes::from_static(b"\n"));
            }
        }
        self.last_byte = chunk.last().copied();
        self.upload.put(chunk.slice(from..));
        Ok(())
    }

    /// The first header seen names the columns (its bytes went out with its part);
    /// later parts' headers are dropped.
    fn header(&mut self, fields: Vec<String>) {
        if self.columns.is_some() || fields.is_empty() {
            return;
        }
        self.types = TypeInference::new(fields.len());
        self.columns = Some(fields);
    }

    /// Drops everything written (a part failed half-way; the caller starts again).
    pub async fn abort(self) {
        if let Err(e) = self.upload.abort().await {
            tracing::warn!(error = %e, "aborting a result upload");
        }
    }

    /// Completes the upload: the result becomes visible at once, whole.
    pub async fn finish(self) -> Result<Written, ResultsError> {
        self.upload.finish().await?;
        Ok(Written {
            location: self.location,
            columns: self.columns.unwrap_or_default(),
            types: self.types.types(),
            rows: self.rows,
        })
    }
}

/// Where the scan of one part stands.
struct PartState {
    splitter: Splitter,
    in_header: bool,
    /// The first part (no header seen before it): its bytes go out as they came.
    verbatim: bool,
    data_started: bool,
}

impl PartState {
    fn new(verbatim: bool) -> Self {
        Self {
            splitter: Splitter::new(),
            in_header: true,
            verbatim,
            data_started: verbatim,
        }
    }
}

/// A stored result's records, read one by one as the object streams in.
pub struct Records(RecordReader);

impl Records {
    /// The next record's fields; `None` at the end.
    pub async fn next(&mut self) -> Result<Option<Vec<String>>, ResultsError> {
        self.0.next_record(true).await
    }
}

/// Reads records one by one from a byte stream, knowing the byte offset after each.
struct RecordReader {
    stream: BoxStream<'static, object_store::Result<Bytes>>,
    buf: Bytes,
    pos: usize,
    base: u64,
    eof: bool,
    splitter: Splitter,
}

impl RecordReader {
    fn new(stream: BoxStream<'static, object_store::Result<Bytes>>, base: u64) -> Self {
        Self {
            stream,
            buf: Bytes::new(),
            pos: 0,
            base,
            eof: false,
            splitter: Splitter::new(),
        }
    }

    /// The byte offset just after the last record returned.
    fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    async fn next_record(&mut self, fields: bool) -> Result<Option<Vec<String>>, ResultsError> {
        loop {
            while !self.eof && self.pos == self.buf.len() {
                match self.stream.next().await {
                    Some(chunk) => {
                        self.base += self.buf.len() as u64;
                        self.buf = chunk?;
                        self.pos = 0;
                    }
                    None => self.eof = true,
                }
            }
            let input = if self.eof {
                &[][..]
            } else {
                &self.buf[self.pos..]
            };
            let (step, n) = self.splitter.step(input, fields);
            self.pos += n;
            match step {
                Step::NeedInput => {}
                Step::Record(row) => return Ok(Some(row)),
                Step::End => return Ok(None),
            }
        }
    }
}

enum Step {
    /// All input consumed within a record: feed more (or an empty slice at the end).
    NeedInput,
    /// A record ended; its fields when they were asked for, else empty.
    Record(Vec<String>),
    /// The end of the data.
    End,
}

/// Incremental CSV record splitter over chunks (csv-core: quotes, escaped line breaks).
struct Splitter {
    rdr: csv_core::Reader,
    out: Vec<u8>,
    out_len: usize,
    ends: Vec<usize>,
    ends_len: usize,
}

impl Splitter {
    fn new() -> Self {
        Self {
            rdr: csv_core::Reader::new(),
            out: vec![0; 4096],
            out_len: 0,
            ends: vec![0; 64],
            ends_len: 0,
        }
    }

    /// Consumes `input` (an empty slice means the end of the data) up to the end of the
    /// next record; returns what happened and how many bytes were consumed.
    fn step(&mut self, input: &[u8], fields: bool) -> (Step, usize) {
        let mut used = 0;
        loop {
            let (res, nin, nout, nend) = self.rdr.read_record(
                &input[used..],
                &mut self.out[self.out_len..],
                &mut self.ends[self.ends_len..],
            );
            used += nin;
            self.out_len += nout;
            self.ends_len += nend;
            match res {
                csv_core::ReadRecordResult::InputEmpty => return (Step::NeedInput, used),
                csv_core::ReadRecordResult::OutputFull if fields => {
                    let len = self.out.len();
                    self.out.resize(len * 2, 0);
                }
                // Only counting: field bytes are not needed, reuse the buffer.
                csv_core::ReadRecordResult::OutputFull => self.out_len = 0,
                csv_core::ReadRecordResult::OutputEndsFull if fields => {
                    let len = self.ends.len();
                    self.ends.resize(len * 2, 0);
                }
                csv_core::ReadRecordResult::OutputEndsFull => self.ends_len = 0,
                csv_core::ReadRecordResult::Record => {
                    let row = if fields { self.fields() } else { Vec::new() };
                    self.out_len = 0;
                    self.ends_len = 0;
                    return (Step::Record(row), used);
                }
                csv_core::ReadRecordResult::End => return (Step::End, used),
            }
        }
    }

    fn fields(&self) -> Vec<String> {
        let mut start = 0;
        self.ends[..self.ends_len]
            .iter()
            .map(|&end| {
                let field = String::from_utf8_lossy(&self.out[start..end]).into_owned();
                start = end;
                field
            })
            .collect()
    }
}

/// Columns and their types as stored on the execution row.
pub fn columns_json(columns: &[String], types: &[ColumnType]) -> Value {
    ResultColumns::to_json(columns, types)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `s` delivered in chunks of `size` bytes (to split records and headers anywhere).
    fn part(s: &str, size: usize) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Unpin {
        let chunks: Vec<_> = s
            .as_bytes()
            .chunks(size)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        futures::stream::iter(chunks)
    }

    fn temp_store() -> (std::path::PathBuf, ResultStore) {
        let dir = std::env::temp_dir().join(format!("amp-results-{}", uuid::Uuid::new_v4()));
        let store = ResultStore::from_url(&format!("file://{}", dir.display())).unwrap();
        (dir, store)
    }

    async fn all_pages(store: &ResultStore, location: &str, limit: usize) -> Vec<Vec<String>> {
        let mut all = Vec::new();
        let mut cursor = None;
        loop {
            let p = store.page(location, cursor, limit).await.unwrap();
            all.extend(p.rows);
            match p.next_cursor {
                Some(c) => cursor = Some(c),
                None => return all,
            }
        }
    }

    async fn csv_text(store: &ResultStore, location: &str) -> String {
        let mut s = store.open(location).await.unwrap();
        let mut out = Vec::new();
        while let Some(chunk) = s.next().await {
            out.extend_from_slice(&chunk.unwrap());
        }
        String::from_utf8(out).unwrap()
    }

    #[tokio::test]
    async fn merges_parts_and_pages_back_everything() {
        for size in [1, 3, 7, 1000] {
            let (dir, store) = temp_store();
            let mut w = store.writer("exec").await.unwrap();
            w.add_part(part("a,b\r\n1,\"x,y\"\r\n2,\"multi\nline\"", size))
                .await
                .unwrap();
            w.add_part(part("a,b\n3,z\n", size)).await.unwrap();
            w.add_part(part("", size)).await.unwrap();
            w.add_part(part("a,b\n", size)).await.unwrap();
            let written = w.finish().await.unwrap();
            assert_eq!(written.rows, 3, "chunk size {size}");
            assert_eq!(written.columns, vec!["a", "b"]);
            assert_eq!(written.location, "exec.csv");
            for limit in [1, 2, 3, 10] {
                assert_eq!(
                    all_pages(&store, &written.location, limit).await,
                    vec![vec!["1", "x,y"], vec!["2", "multi\nline"], vec!["3", "z"]],
                    "chunk size {size}, limit {limit}"
                );
            }
            assert_eq!(
                csv_text(&store, &written.location).await,
                "a,b\r\n1,\"x,y\"\r\n2,\"multi\nline\"\n3,z\n"
            );
            let _ = std::fs::remove_dir_all(dir);
        }
    }

    #[tokio::test]
    async fn first_part_is_kept_byte_for_byte_and_types_span_every_part() {
        use crate::result_types::ColumnType::{Date, Integer, String};
        for size in [1, 4, 1000] {
            let (dir, store) = temp_store();
            let mut w = store.writer("typed").await.unwrap();
            let first = "\"n\",\"x\",when\r\n1,0.5,2024-01-01\r\n2,,\r\n";
            w.add_part(part(first, size)).await.unwrap();
            w.add_part(part("\"n\",\"x\",when\r\n3,true,2024-01-02\r\n", size))
                .await
                .unwrap();
            let written = w.finish().await.unwrap();
            assert_eq!(written.columns, vec!["n", "x", "when"]);
            assert_eq!(
                written.types,
                vec![Integer, String, Date],
                "chunk size {size}"
            );
            assert_eq!(
                csv_text(&store, "typed.csv").await,
                format!("{first}3,true,2024-01-02\r\n")
            );
            let _ = std::fs::remove_dir_all(dir);
        }
    }

    #[tokio::test]
    async fn large_result_spans_many_upload_parts() {
        let (dir, store) = temp_store();
        let rows = 200_000u64;
        let body: String = std::iter::once("n,sq\n".to_string())
            .chain((0..rows).map(|i| format!("{i},{}\n", i * i)))
            .collect();
        assert!(body.len() > 2 * LOCAL_PART_SIZE);
        let mut w = store.writer("big").await.unwrap();
        w.add_part(part(&body, 8192)).await.unwrap();
        w.add_part(part("n,sq\n", 8192)).await.unwrap();
        let written = w.finish().await.unwrap();
        assert_eq!(written.rows, rows);
        assert_eq!(csv_text(&store, "big.csv").await, body);
        let got = all_pages(&store, "big.csv", 30_000).await;
        assert_eq!(got.len() as u64, rows);
        assert_eq!(got[199_999], vec!["199999", "39999600001"]);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn empty_result_and_bad_cursors() {
        let (dir, store) = temp_store();
        let w = store.writer("empty").await.unwrap();
        let written = w.finish().await.unwrap();
        assert_eq!((written.rows, written.columns.len()), (0, 0));
        let p = store.page("empty.csv", None, 10).await.unwrap();
        assert!(p.rows.is_empty() && p.next_cursor.is_none());

        let mut w = store.writer("one").await.unwrap();
        w.add_part(part("a\n1\n2\n", 100)).await.unwrap();
        w.finish().await.unwrap();
        let first = store.page("one.csv", None, 1).await.unwrap();
        assert_eq!(first.next_cursor, Some(4));
        for bad in [0, 1, 6, 99] {
            assert!(matches!(
                store.page("one.csv", Some(bad), 1).await,
                Err(ResultsError::BadCursor)
            ));
        }
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn aborted_writer_leaves_nothing() {
        let (dir, store) = temp_store();
        let mut w = store.writer("gone").await.unwrap();
        w.add_part(part("a\n1\n", 100)).await.unwrap();
        w.abort().await;
        assert!(store.page("gone.csv", None, 1).await.is_err());
        let mut w = store.writer("kept").await.unwrap();
        w.add_part(part("a\n1\n", 100)).await.unwrap();
        w.finish().await.unwrap();
        store.delete("kept.csv").await.unwrap();
        store.delete("kept.csv").await.unwrap();
        let err = store.page("kept.csv", None, 1).await.unwrap_err();
        assert!(err.is_not_found(), "{err}");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn bad_urls_name_the_variable() {
        for bad in ["", "gs://bucket/x", "ftp://host/x", "s3://"] {
            let err = ResultStore::from_url(bad).unwrap_err().to_string();
            assert!(err.starts_with("AMP_RESULTS_URL"), "{bad}: {err}");
        }
        assert!(ResultStore::from_url("memory:///").is_ok());
    }
}
