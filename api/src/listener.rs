//! problem+json for the errors HTTP parsing itself answers. hyper refuses a request it
//! cannot parse (a bad header byte: 400, a path over 64 KB: 414, headers too large: 431)
//! before any endpoint runs, with a bare response and no body, then closes the
//! connection. [`ProblemAcceptor`] wraps each connection so that such an answer goes out
//! as a problem+json body instead. Every answer of the API's own endpoints to an error
//! carries a content type (the problem layer sees to it), so only hyper's are rewritten.

use poem::http::uri::Scheme;
use poem::listener::Acceptor;
use poem::web::{LocalAddr, RemoteAddr};
use std::io::{IoSlice, Result as IoResult};
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// An acceptor whose connections answer hyper's parse errors as problem+json.
pub struct ProblemAcceptor<A>(pub A);

impl<A: Acceptor> Acceptor for ProblemAcceptor<A> {
    type Io = ProblemIo<A::Io>;

    fn local_addr(&self) -> Vec<LocalAddr> {
        self.0.local_addr()
    }

    async fn accept(&mut self) -> IoResult<(Self::Io, LocalAddr, RemoteAddr, Scheme)> {
        let (io, local, remote, scheme) = self.0.accept().await?;
        Ok((
            ProblemIo {
                inner: io,
                pending: Vec::new(),
            },
            local,
            remote,
            scheme,
        ))
    }
}

/// A connection whose bare parse-error answers are rewritten (see the module docs).
pub struct ProblemIo<T> {
    inner: T,
    /// Rewritten bytes not yet written to `inner`.
    pending: Vec<u8>,
}

/// The problem+json answer replacing hyper's bare `head`, if `head` is one.
pub fn rewrite(head: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(head).ok()?;
    let end = text.find("\r\n\r\n")?;
    if end + 4 != text.len() {
        return None;
    }
    let rest = text.strip_prefix("HTTP/1.1 ")?;
    let code: u16 = rest.get(..3)?.parse().ok()?;
    let lower = text.to_ascii_lowercase();
    if lower.contains("content-type:") || !lower.contains("\r\ncontent-length: 0\r\n") {
        return None;
    }
    let (title, detail) = match code {
        400 => (
            "Bad Request",
            "the request could not be read as HTTP (a malformed request line or header)",
        ),
        414 => (
            "URI Too Long",
            "the request's path and query are longer than the server reads",
        ),
        431 => (
            "Request Header Fields Too Large",
            "the request's headers are larger than the server reads",
        ),
        _ => return None,
    };
    let body = serde_json::json!({
        "type": "about:blank",
        "title": title,
        "status": code,
        "detail": detail,
    })
    .to_string();
    Some(
        format!(
            "HTTP/1.1 {code} {title}\r\ncontent-type: {}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            crate::error::PROBLEM_JSON,
            body.len()
        )
        .into_bytes(),
    )
}

impl<T: AsyncWrite + Unpin> ProblemIo<T> {
    /// Writes what is pending; ready once nothing is.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<IoResult<()>> {
        while !self.pending.is_empty() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending))?;
            if n == 0 {
                return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
            }
            self.pending.drain(..n);
        }
        Poll::Ready(Ok(()))
    }

    /// Takes `buf` as written when it is a bare parse-error answer to rewrite.
    fn poll_rewrite(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Option<Poll<IoResult<usize>>> {
        if !buf.starts_with(b"HTTP/1.1 4") {
            return None;
        }
        let replacement = rewrite(buf)?;
        self.pending = replacement;
        Some(match self.poll_pending(cx) {
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            // Written or still pending: the original bytes count as taken.
            _ => Poll::Ready(Ok(buf.len())),
        })
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for ProblemIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<IoResult<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for ProblemIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<IoResult<usize>> {
        ready!(self.poll_pending(cx))?;
        if let Some(done) = self.poll_rewrite(cx, buf) {
            return done;
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<IoResult<usize>> {
        ready!(self.poll_pending(cx))?;
        let non_empty: Vec<&IoSlice<'_>> = bufs.iter().filter(|b| !b.is_empty()).collect();
        if let [only] = non_empty.as_slice()
            && let Some(done) = self.poll_rewrite(cx, only)
        {
            return done;
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<IoResult<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<IoResult<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_bare_parse_error_heads_are_rewritten() {
        let bare = b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\ndate: Tue, 01 Dec 2026 10:00:00 GMT\r\n\r\n";
        let out = String::from_utf8(rewrite(bare).expect("rewritten")).unwrap();
        assert!(out.starts_with("HTTP/1.1 414 URI Too Long\r\n"), "{out}");
        assert!(out.contains("content-type: application/problem+json"));
        let body = out.split("\r\n\r\n").nth(1).unwrap();
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["status"], 414);
        assert_eq!(
            out.split("content-length: ")
                .nth(1)
                .unwrap()
                .split("\r\n")
                .next(),
            Some(body.len().to_string().as_str())
        );
        // Our own answers carry a content type (and a body): left alone.
        assert!(rewrite(b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/problem+json\r\ncontent-length: 0\r\n\r\n").is_none());
        assert!(rewrite(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n").is_none());
        assert!(rewrite(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n{}").is_none());
    }
}
