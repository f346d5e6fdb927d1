//! Request guards: the body size limit (413 problem+json) and security headers.

use crate::error::ApiError;
use poem::http::{HeaderValue, Method, header};
use poem::middleware::SetHeader;
use poem::{Body, Endpoint, IntoResponse, Request, Response};
use std::sync::Arc;

/// The largest request body accepted.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Middleware body: a declared or streamed body over [`MAX_BODY_BYTES`] → 413.
pub async fn body_limit_layer<E: Endpoint>(ep: Arc<E>, mut req: Request) -> poem::Result<Response> {
    let too_large =
        || ApiError::PayloadTooLarge(format!("request body exceeds {MAX_BODY_BYTES} bytes"));
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    match declared {
        Some(n) if n > MAX_BODY_BYTES as u64 => return Err(too_large().into()),
        Some(_) => {}
        None if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) => {}
        None => {
            // A streamed (chunked) body: read it within the limit.
            let bytes = req
                .take_body()
                .into_bytes_limit(MAX_BODY_BYTES)
                .await
                .map_err(|_| too_large())?;
            req.set_body(Body::from_bytes(bytes));
        }
    }
    Ok(ep.call(req).await?.into_response())
}

/// Security headers on every response; HSTS only in production (behind TLS).
pub fn security_headers(production: bool) -> SetHeader {
    let headers = SetHeader::new()
        .overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        )
        .overriding(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"))
        .overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
    if production {
        headers.overriding(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=63072000; includeSubDomains"),
        )
    } else {
        headers
    }
}
