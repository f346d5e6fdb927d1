//! The event feed (`GET /events`, `GET /events/stream`) against the real binaries.
//! Run `cargo build --workspace --bins` first (`ops/test` does).
//!
//! - `order`: concurrent writers with transactions open for hundreds of milliseconds
//!   while a reader follows the feed: every committed event once, in `(txid, seq)` order,
//!   none skipped (against a database, no binaries).
//! - `feed`: pages in order, the user's own events only, polling at the end, filters, and
//!   bad input on every parameter.
//! - `stream`: a run's transitions live over SSE, resuming from `Last-Event-ID` with
//!   nothing missed or repeated, tickets, and streams ending cleanly at shutdown.

mod feed;
mod order;
mod stream;

use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use serde_json::Value;
use std::time::Duration;
use testkit::{Client, System};

/// The SQL of the workflows: unique per `n`.
pub const SQL: &str = "SELECT campaign, SUM(impressions) AS impressions FROM dsp_impressions WHERE run_no = {{n}} GROUP BY campaign";

/// A registered, logged-in user and their id.
pub async fn user(sys: &System, email: &str) -> (Client, String) {
    let mut c = sys.client();
    c.register_and_login(email).await;
    let (s, me) = c.get("/me").await;
    assert_eq!(s, 200, "me: {me}");
    (c, me["id"].as_str().expect("user id").to_string())
}

/// Runs one statement on the system's database.
pub async fn exec(db: &DatabaseConnection, sql: &str) {
    db.execute_raw(Statement::from_string(
        sea_orm::DbBackend::Postgres,
        sql.to_string(),
    ))
    .await
    .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// The field a 422 names.
pub fn field(b: &Value) -> String {
    b["errors"][0]["field"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Every event of the feed from the start, following `next_cursor` (`limit` per page).
pub async fn whole_feed(c: &Client, query: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut after = String::new();
    loop {
        let (s, page) = c
            .get(&format!("/events?limit=500&after={after}{query}"))
            .await;
        assert_eq!(s, 200, "{page}");
        let items = page["items"].as_array().expect("items").clone();
        if items.is_empty() {
            return out;
        }
        out.extend(items);
        after = page["next_cursor"]
            .as_str()
            .expect("next_cursor")
            .to_string();
    }
}

/// One Server-Sent Event.
#[derive(Debug, Clone)]
pub struct SseEvent {
    pub id: String,
    pub event: String,
    pub data: Value,
}

/// What reading a stream gave.
#[derive(Debug)]
pub enum Next {
    Event(SseEvent),
    /// Nothing within the wait.
    Quiet,
    /// The server ended the stream (cleanly).
    End,
}

/// A `GET /events/stream` being read.
pub struct Sse {
    resp: reqwest::Response,
    buf: Vec<u8>,
}

impl Sse {
    /// Opens `/events/stream{query}` with `token` (if any) and `headers`; the status and,
    /// for a 200, the stream.
    pub async fn open(
        c: &Client,
        token: Option<&str>,
        query: &str,
        headers: &[(&str, &str)],
    ) -> (u16, Option<Sse>, Value) {
        let mut req = c.http.get(format!("{}/events/stream{query}", c.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.expect("stream request");
        let status = resp.status().as_u16();
        if status != 200 {
            let body = resp.text().await.unwrap_or_default();
            return (
                status,
                None,
                serde_json::from_str(&body).unwrap_or(Value::String(body)),
            );
        }
        let ct = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        assert!(ct.starts_with("text/event-stream"), "content type {ct}");
        (
            status,
            Some(Sse {
                resp,
                buf: Vec::new(),
            }),
            Value::Null,
        )
    }

    /// The next event within `wait` (comment lines are skipped).
    pub async fn next(&mut self, wait: Duration) -> Next {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\n\n") {
                let block: Vec<u8> = self.buf.drain(..i + 2).collect();
                if let Some(e) = parse_block(&String::from_utf8_lossy(&block)) {
                    return Next::Event(e);
                }
                continue;
            }
            match tokio::time::timeout_at(deadline, self.resp.chunk()).await {
                Err(_) => return Next::Quiet,
                Ok(Ok(Some(bytes))) => self.buf.extend_from_slice(&bytes),
                Ok(Ok(None)) => return Next::End,
                Ok(Err(e)) => panic!("the stream broke off: {e}"),
            }
        }
    }

    /// The next `n` events, each within `wait`.
    pub async fn take(&mut self, n: usize, wait: Duration) -> Vec<SseEvent> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            match self.next(wait).await {
                Next::Event(e) => out.push(e),
                other => panic!(
                    "expected {n} events, got {} then {other:?}: {out:?}",
                    out.len()
                ),
            }
        }
        out
    }
}

fn parse_block(block: &str) -> Option<SseEvent> {
    let (mut id, mut event, mut data) = (String::new(), String::new(), String::new());
    for line in block.lines() {
        if let Some(v) = line.strip_prefix("id: ") {
            id = v.to_string();
        } else if let Some(v) = line.strip_prefix("event: ") {
            event = v.to_string();
        } else if let Some(v) = line.strip_prefix("data: ") {
            data.push_str(v);
        }
    }
    if data.is_empty() {
        return None;
    }
    Some(SseEvent {
        id,
        event,
        data: serde_json::from_str(&data).unwrap_or_else(|e| panic!("data {data}: {e}")),
    })
}
