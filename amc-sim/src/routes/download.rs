//! Presigned-looking result URLs and the streamed CSV parts behind them.

use std::sync::Arc;

use poem::http::StatusCode;
use poem::web::{Data, Path};
use poem::{Body, Request, Response, handler};
use sha2::{Digest, Sha256};

use super::query_map;
use crate::results::{expected_rows, part_count, stream_part};
use crate::state::Sim;

/// `<base>/sim/results/<id>/part-<n>.csv?expires=<unix ms>&sig=<hex>`.
pub(crate) fn signed_url(sim: &Sim, id: &str, n: u32, expires_ms: i64) -> String {
    format!(
        "{}/sim/results/{id}/part-{n}.csv?expires={expires_ms}&sig={}",
        sim.base_url,
        sign(sim.cfg.seed, id, n, expires_ms)
    )
}

fn sign(seed: u64, id: &str, n: u32, expires_ms: i64) -> String {
    let d = Sha256::digest(format!("amc-sim:{seed}:{id}:{n}:{expires_ms}"));
    hex::encode(&d[..16])
}

#[handler]
pub async fn result_file(
    req: &Request,
    Path((id, file)): Path<(String, String)>,
    Data(sim): Data<&Arc<Sim>>,
) -> Response {
    let n = file
        .strip_prefix("part-")
        .and_then(|f| f.strip_suffix(".csv"))
        .and_then(|n| n.parse::<u32>().ok());
    let (Some(n), Some(sql)) = (n, sim.result_sql(&id)) else {
        return s3_error(
            StatusCode::NOT_FOUND,
            "NoSuchKey",
            "The specified key does not exist.",
        );
    };
    let canned = sim.canned_result(&sql);
    let parts = match canned {
        Some(_) => 1,
        None => part_count(expected_rows(&sql), sim.cfg.parts),
    };
    if n >= parts {
        return s3_error(
            StatusCode::NOT_FOUND,
            "NoSuchKey",
            "The specified key does not exist.",
        );
    }
    let q = query_map(req);
    let expires = q.get("expires").and_then(|e| e.parse::<i64>().ok());
    let Some(expires) = expires.filter(|e| q.get("sig") == Some(&sign(sim.cfg.seed, &id, n, *e)))
    else {
        return s3_error(
            StatusCode::FORBIDDEN,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
        );
    };
    if sim.clock.now().timestamp_millis() > expires {
        return s3_error(StatusCode::FORBIDDEN, "AccessDenied", "Request has expired");
    }
    let body = match canned {
        Some(csv) => Body::from_bytes(csv),
        None => Body::from_bytes_stream(stream_part(&sql, parts, n)),
    };
    Response::builder().content_type("text/csv").body(body)
}

fn s3_error(status: StatusCode, code: &str, message: &str) -> Response {
    Response::builder()
        .status(status)
        .content_type("application/xml")
        .body(format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message><RequestId>{}</RequestId></Error>",
            uuid::Uuid::new_v4().simple()
        ))
}
