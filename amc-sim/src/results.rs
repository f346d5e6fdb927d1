//! Deterministic result files: row count and row values derived from the SQL text, served
//! as CSV parts generated on the fly (never held in memory whole).

use std::ops::Range;

use bytes::Bytes;
use futures::Stream;
use sha2::{Digest, Sha256};

/// The CSV header line (without the line break).
pub const CSV_HEADER: &str = "campaign,impressions,clicks,spend";
/// Results larger than this are split into at least two parts.
pub const AUTO_SPLIT_ROWS: u64 = 100_000;
/// The marker that fixes the row count, e.g. `/* sim_rows=200000 */`.
pub const ROWS_MARKER: &str = "sim_rows=";
/// The marker that picks a result set through the admin API, e.g. `/* sim_result=typed */`.
pub const RESULT_MARKER: &str = "sim_result=";
/// Rows generated per streamed chunk.
const CHUNK_ROWS: u64 = 2_000;

/// Rows the simulator serves for `sql`: N when the text contains `sim_rows=N`, otherwise
/// `1 + (first 8 bytes of sha256(sql), big-endian) mod 20`.
pub fn expected_rows(sql: &str) -> u64 {
    marker_rows(sql).unwrap_or_else(|| 1 + sql_hash(sql) % 20)
}

/// Result files for a result of `rows` rows when `configured` parts are asked for.
pub fn part_count(rows: u64, configured: u32) -> u32 {
    let min = if rows > AUTO_SPLIT_ROWS { 2 } else { 1 };
    configured.max(min)
}

/// The global row indices held by part `n` of `parts`.
pub fn part_range(rows: u64, parts: u32, n: u32) -> Range<u64> {
    let parts = u64::from(parts.max(1));
    let n = u64::from(n).min(parts);
    (rows * n / parts)..(rows * (n + 1).min(parts) / parts)
}

/// Row `i` (0-based, global across parts) as a CSV line with its line break.
pub fn csv_row(sql_hash: u64, i: u64) -> String {
    let h = splitmix64(sql_hash ^ splitmix64(i));
    let impressions = h % 100_000;
    let clicks = impressions / 37;
    let cents = (h >> 20) % 1_000_000;
    format!(
        "campaign_{i},{impressions},{clicks},{}.{:02}\n",
        cents / 100,
        cents % 100
    )
}

/// Part `n` of the result of `sql` as one string (handy for tests; the server streams).
pub fn render_part(sql: &str, parts: u32, n: u32) -> String {
    let h = sql_hash(sql);
    let mut out = format!("{CSV_HEADER}\n");
    for i in part_range(expected_rows(sql), parts, n) {
        out.push_str(&csv_row(h, i));
    }
    out
}

/// Part `n` of the result of `sql`, generated chunk by chunk.
pub fn stream_part(
    sql: &str,
    parts: u32,
    n: u32,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    let h = sql_hash(sql);
    let range = part_range(expected_rows(sql), parts, n);
    let header = futures::stream::once(async { Ok(Bytes::from(format!("{CSV_HEADER}\n"))) });
    let rows = futures::stream::unfold(range, move |mut range| async move {
        if range.is_empty() {
            return None;
        }
        let end = range.end.min(range.start + CHUNK_ROWS);
        let mut chunk = String::with_capacity(48 * (end - range.start) as usize);
        for i in range.start..end {
            chunk.push_str(&csv_row(h, i));
        }
        range.start = end;
        Some((Ok(Bytes::from(chunk)), range))
    });
    futures::StreamExt::chain(header, rows)
}

/// First 8 bytes of sha256(sql), big-endian.
pub fn sql_hash(sql: &str) -> u64 {
    let d = Sha256::digest(sql.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&d[..8]);
    u64::from_be_bytes(first)
}

/// The name after [`RESULT_MARKER`] (letters, digits, `_` and `-`).
pub fn canned_name(sql: &str) -> Option<&str> {
    let at = sql.find(RESULT_MARKER)? + RESULT_MARKER.len();
    let rest = &sql[at..];
    let len = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .unwrap_or(rest.len());
    (len > 0).then(|| &rest[..len])
}

fn marker_rows(sql: &str) -> Option<u64> {
    let at = sql.find(ROWS_MARKER)? + ROWS_MARKER.len();
    let digits: String = sql[at..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    #[test]
    fn marker_fixes_row_count() {
        assert_eq!(expected_rows("SELECT 1 /* sim_rows=200000 */"), 200_000);
        assert_eq!(expected_rows("SELECT 'sim_rows=0'"), 0);
        let n = expected_rows("SELECT campaign FROM x");
        assert!((1..=20).contains(&n));
        assert_eq!(n, expected_rows("SELECT campaign FROM x"));
    }

    #[test]
    fn result_marker_names_a_canned_result() {
        assert_eq!(
            canned_name("SELECT 1 /* sim_result=typed-1 */"),
            Some("typed-1")
        );
        assert_eq!(canned_name("SELECT 1 /* sim_result= */"), None);
        assert_eq!(canned_name("SELECT 1"), None);
    }

    #[test]
    fn parts_cover_all_rows_once() {
        assert_eq!(part_count(100_000, 1), 1);
        assert_eq!(part_count(100_001, 1), 2);
        assert_eq!(part_count(10, 3), 3);
        let rows = 10;
        let ranges: Vec<_> = (0..3).map(|n| part_range(rows, 3, n)).collect();
        assert_eq!(ranges, vec![0..3, 3..6, 6..10]);
    }

    #[test]
    fn rows_are_deterministic_and_consistent() {
        let h = sql_hash("q");
        assert_eq!(csv_row(h, 7), csv_row(h, 7));
        let line = csv_row(h, 7);
        let cols: Vec<&str> = line.trim_end().split(',').collect();
        assert_eq!(cols[0], "campaign_7");
        let imp: u64 = cols[1].parse().expect("impressions");
        let clicks: u64 = cols[2].parse().expect("clicks");
        assert!(imp < 100_000);
        assert_eq!(clicks, imp / 37);
        assert_eq!(cols[3].split('.').nth(1).map(str::len), Some(2));
    }

    #[tokio::test]
    async fn stream_matches_render() {
        let sql = "SELECT 1 /* sim_rows=4500 */";
        let mut streamed = Vec::new();
        let mut s = Box::pin(stream_part(sql, 2, 1));
        while let Some(chunk) = s.next().await {
            streamed.extend_from_slice(&chunk.expect("chunk"));
        }
        assert_eq!(
            String::from_utf8(streamed).expect("utf8"),
            render_part(sql, 2, 1)
        );
        assert_eq!(render_part(sql, 2, 1).lines().count(), 1 + 2250);
    }
}
