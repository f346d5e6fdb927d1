//! A fast local webhook receiver for `ops/bench/webhooks.py`: answers every `POST` with
//! 200 at once (empty body) and records, per request, its arrival time (wall clock, ns,
//! read first thing in the handler), its `webhook-id`, the body's `timestamp` (the
//! event's creation time, RFC 3339 with ms) and whether it carried a
//! `webhook-signature`. Nothing is verified or parsed beyond that, so the receiver costs
//! as little as it can.
//!
//! ```text
//! bench-receiver [--addr 127.0.0.1:0] [--threads 2]
//! ```
//!
//! Prints `listening on http://ADDR` once bound. `GET /count` answers how many requests
//! were recorded; `GET /records` answers them as tab-separated lines
//! `arrival_ns  webhook_id  timestamp  signed(0|1)` (`?clear=1` also forgets them);
//! any `POST` is recorded (e.g. `POST /hook`).

use poem::http::StatusCode;
use poem::listener::TcpAcceptor;
use poem::web::{Data, Query};
use poem::{Body, EndpointExt, Request, Response, Route, Server, get, handler, post};
use serde::Deserialize;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

struct Rec {
    arrival_ns: u128,
    id: String,
    timestamp: String,
    signed: bool,
}

type Records = Arc<Mutex<Vec<Rec>>>;

/// The value of `"timestamp":"…"` in the body, without parsing the JSON.
fn timestamp_of(body: &[u8]) -> String {
    const KEY: &[u8] = b"\"timestamp\":\"";
    body.windows(KEY.len())
        .position(|w| w == KEY)
        .and_then(|i| {
            let rest = &body[i + KEY.len()..];
            let end = rest.iter().position(|&b| b == b'"')?;
            std::str::from_utf8(&rest[..end]).ok().map(str::to_owned)
        })
        .unwrap_or_default()
}

#[handler]
async fn receive(req: &Request, body: Body, Data(records): Data<&Records>) -> StatusCode {
    let arrival_ns = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let body = body.into_vec().await.unwrap_or_default();
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    let rec = Rec {
        arrival_ns,
        id: header("webhook-id").to_owned(),
        timestamp: timestamp_of(&body),
        signed: header("webhook-signature").starts_with("v1,"),
    };
    records.lock().unwrap_or_else(|e| e.into_inner()).push(rec);
    StatusCode::OK
}

#[handler]
fn count(Data(records): Data<&Records>) -> String {
    records
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .len()
        .to_string()
}

#[derive(Deserialize)]
struct Clear {
    clear: Option<u8>,
}

#[handler]
fn list(Query(q): Query<Clear>, Data(records): Data<&Records>) -> Response {
    let taken: Vec<Rec> = {
        let mut r = records.lock().unwrap_or_else(|e| e.into_inner());
        if q.clear == Some(1) {
            std::mem::take(&mut *r)
        } else {
            r.iter()
                .map(|x| Rec {
                    arrival_ns: x.arrival_ns,
                    id: x.id.clone(),
                    timestamp: x.timestamp.clone(),
                    signed: x.signed,
                })
                .collect()
        }
    };
    let mut out = String::with_capacity(taken.len() * 96);
    for r in &taken {
        let _ = writeln!(
            out,
            "{}\t{}\t{}\t{}",
            r.arrival_ns,
            r.id,
            r.timestamp,
            u8::from(r.signed)
        );
    }
    Response::builder()
        .content_type("text/tab-separated-values")
        .body(out)
}

fn main() -> anyhow::Result<()> {
    let mut addr = "127.0.0.1:0".to_owned();
    let mut threads = 2usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--addr" => addr = args.next().ok_or_else(|| anyhow::anyhow!("--addr ADDR"))?,
            "--threads" => {
                threads = args
                    .next()
                    .ok_or_else(|| anyhow::anyhow!("--threads N"))?
                    .parse()?
            }
            other => anyhow::bail!("unknown argument {other} (--addr ADDR, --threads N)"),
        }
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()?
        .block_on(async move {
            let listener = tokio::net::TcpListener::bind(&addr).await?;
            let bound = listener.local_addr()?;
            let store: Records = Arc::new(Mutex::new(Vec::with_capacity(100_000)));
            let app = Route::new()
                .at("/count", get(count))
                .at("/records", get(list))
                .at("/*path", post(receive))
                .data(store);
            println!("listening on http://{bound}");
            Server::new_with_acceptor(TcpAcceptor::from_tokio(listener)?)
                .run(app)
                .await?;
            Ok(())
        })
}

#[cfg(test)]
mod tests {
    use super::timestamp_of;

    #[test]
    fn finds_the_timestamp() {
        let body = br#"{"type":"collection.completed","timestamp":"2026-12-08T10:00:00.123Z","data":{"n":1}}"#;
        assert_eq!(timestamp_of(body), "2026-12-08T10:00:00.123Z");
        assert_eq!(timestamp_of(b"{}"), "");
    }
}
