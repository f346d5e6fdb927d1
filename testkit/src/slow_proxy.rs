//! A TCP proxy in front of amc-sim that, while switched on, holds each answer for a long
//! time (the request itself reaches amc-sim at once): handlers sit inside slow AMC calls.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A proxy to `upstream` that delays answers to requests sent while `slow` is on.
pub struct SlowProxy {
    /// `http://` address to use as `AMP_AMC_BASE_URL`.
    pub url: String,
    /// While true, each request's answer is held for the proxy's delay.
    pub slow: Arc<AtomicBool>,
    /// Answers held right now.
    pub delaying: Arc<AtomicUsize>,
}

impl SlowProxy {
    /// Listens on a free loopback port, forwarding to `upstream` (`host:port`).
    pub async fn start(upstream: String, delay: Duration) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let slow = Arc::new(AtomicBool::new(false));
        let delaying = Arc::new(AtomicUsize::new(0));
        let (s, d) = (slow.clone(), delaying.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (s, d, up) = (s.clone(), d.clone(), upstream.clone());
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(&up).await {
                        pipe(client, server, s, d, delay).await;
                    }
                });
            }
        });
        Self {
            url,
            slow,
            delaying,
        }
    }

    /// Answers held right now.
    pub fn held(&self) -> usize {
        self.delaying.load(Ordering::SeqCst)
    }

    /// Switches the holding of answers on or off (answers already held stay held).
    pub fn set_slow(&self, on: bool) {
        self.slow.store(on, Ordering::SeqCst);
    }
}

/// Counts one held answer while alive (also when the client leaves and the copy is dropped).
struct Held<'a>(&'a AtomicUsize);

impl<'a> Held<'a> {
    fn new(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Self(count)
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn pipe(
    client: TcpStream,
    server: TcpStream,
    slow: Arc<AtomicBool>,
    delaying: Arc<AtomicUsize>,
    delay: Duration,
) {
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let pending = Arc::new(AtomicBool::new(false));
    let p = pending.clone();
    let up = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match cr.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if slow.load(Ordering::SeqCst) {
                p.store(true, Ordering::SeqCst);
            }
            if sw.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    };
    let down = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match sr.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if pending.swap(false, Ordering::SeqCst) {
                let _held = Held::new(&delaying);
                tokio::time::sleep(delay).await;
            }
            if cw.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    };
    tokio::select! {
        _ = up => {}
        _ = down => {}
    }
}
