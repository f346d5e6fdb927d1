//! Results go through the object store streamed: a 200,000-row result costs the worker no
//! more memory than a 2,000-row one, and both page back whole as JSON and as CSV.

use amc_sim::results::{CSV_HEADER, csv_row, sql_hash};
use common::result_types::ColumnType;
use serde_json::{Value, json};
use std::time::Duration;
use testkit::{Client, System, SystemOptions};

const SMALL: u64 = 2_000;
const BIG: u64 = 200_000;
/// Peak RSS may grow by less than this between the small and the big result.
const MAX_GROWTH_KB: u64 = 20 * 1024;

fn sql(rows: u64) -> String {
    format!(
        "SELECT campaign, SUM(impressions) AS impressions FROM dsp_impressions /* sim_rows={rows} */ GROUP BY campaign"
    )
}

/// The worker's peak resident set (VmHWM) in kB.
fn peak_rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

/// Runs a workflow of `rows` rows to `succeeded`; returns the execution id.
async fn run_to_success(c: &Client, instance_id: &str, rows: u64) -> String {
    let wf = c.workflow(instance_id, &sql(rows), json!({})).await;
    let id = c.run(&wf, json!({})).await;
    let runs = c
        .wait_terminal(std::slice::from_ref(&id), Duration::from_secs(40))
        .await;
    let e = &runs[0];
    assert_eq!(e["status"], "succeeded", "{e}");
    assert_eq!(e["row_count"].as_u64(), Some(rows), "{e}");
    id
}

/// The last row amc-sim serves for a result of `rows` rows, as fields.
fn last_row(rows: u64) -> Vec<String> {
    csv_row(sql_hash(&sql(rows)), rows - 1)
        .trim_end()
        .split(',')
        .map(str::to_string)
        .collect()
}

/// A row of amc-sim's generated result as typed JSON cells.
pub fn typed(row: Vec<String>) -> Vec<Value> {
    let types = [
        ColumnType::String,
        ColumnType::Integer,
        ColumnType::Integer,
        ColumnType::Decimal,
    ];
    types
        .iter()
        .zip(row)
        .map(|(t, cell)| t.to_json(cell))
        .collect()
}

/// Pages the whole result back as JSON (10,000 rows a page): (row count, last row).
async fn page_json(c: &Client, id: &str) -> (u64, Vec<Value>) {
    let mut count = 0u64;
    let mut last = Value::Null;
    let mut cursor = String::new();
    loop {
        let (s, page) = c
            .get(&format!(
                "/executions/{id}/results?limit=10000&cursor={cursor}"
            ))
            .await;
        assert_eq!(s, 200, "{page}");
        assert_eq!(
            page["columns"],
            json!(["campaign", "impressions", "clicks", "spend"])
        );
        assert_eq!(
            page["column_types"],
            json!(["string", "integer", "integer", "decimal"])
        );
        let rows = page["rows"].as_array().expect("rows");
        if count == 0 {
            assert_eq!(rows[0][0], "campaign_0");
        }
        count += rows.len() as u64;
        if let Some(r) = rows.last() {
            last = r.clone();
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_string(),
            None => break,
        }
    }
    (count, last.as_array().expect("a last row").clone())
}

/// Downloads the result as CSV: (data line count, last line).
async fn fetch_csv(c: &Client, id: &str) -> (u64, String) {
    let resp = c
        .http
        .get(format!("{}/executions/{id}/results?format=csv", c.base))
        .bearer_auth(c.token.as_ref().expect("token"))
        .send()
        .await
        .expect("csv request");
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.expect("csv body");
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some(CSV_HEADER));
    let mut count = 0u64;
    let mut last = String::new();
    for l in lines {
        count += 1;
        last = l.to_string();
    }
    (count, last)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_results_stream_through_the_store_in_bounded_memory() {
    let sys = System::start(SystemOptions::default())
        .await
        .expect("system");
    let mut c = sys.client();
    c.register_and_login("results@example.com").await;
    let setup = c
        .first_run_setup("amcresults", 10, &sql(SMALL), json!({}))
        .await;
    let pid = sys.workers[0].pid().expect("worker pid");

    let small = run_to_success(&c, &setup.instance_id, SMALL).await;
    let small_peak = peak_rss_kb(pid);
    let big = run_to_success(&c, &setup.instance_id, BIG).await;
    let big_peak = peak_rss_kb(pid);
    eprintln!("worker peak RSS: {small_peak} kB after {SMALL} rows, {big_peak} kB after {BIG}");
    assert!(
        big_peak.saturating_sub(small_peak) < MAX_GROWTH_KB,
        "worker peak RSS grew from {small_peak} kB to {big_peak} kB"
    );

    for (id, rows) in [(&small, SMALL), (&big, BIG)] {
        let (count, last) = page_json(&c, id).await;
        assert_eq!(
            (count, last),
            (rows, typed(last_row(rows))),
            "JSON of {rows}"
        );
        let (count, last) = fetch_csv(&c, id).await;
        assert_eq!(count, rows, "CSV of {rows}");
        assert_eq!(last, last_row(rows).join(","), "CSV of {rows}");
    }
    cursors_are_opaque_and_checked(&c, &small, &big).await;
    sys.cleanup().await;
}

/// A cursor cannot be edited, guessed or used on another run: each try is 422 naming
/// `cursor`, never a page cut in the middle of a row.
async fn cursors_are_opaque_and_checked(c: &Client, small: &str, big: &str) {
    let (s, first) = c.get(&format!("/executions/{big}/results?limit=3")).await;
    assert_eq!(s, 200, "{first}");
    let cursor = first["next_cursor"].as_str().expect("a cursor").to_string();
    let (s, next) = c
        .get(&format!(
            "/executions/{big}/results?limit=1&cursor={cursor}"
        ))
        .await;
    assert_eq!(
        (s, &next["rows"][0][0]),
        (200, &json!("campaign_3")),
        "{next}"
    );
    let mut tampered = cursor.clone().into_bytes();
    let i = tampered.len() / 2;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).expect("ascii");
    for bad in [
        tampered.as_str(),
        "17",
        "campaign",
        &cursor[..cursor.len() - 1],
    ] {
        for id in [big, small] {
            let (s, p) = c
                .get(&format!("/executions/{id}/results?limit=1&cursor={bad}"))
                .await;
            assert_eq!(s, 422, "{bad} on {id}: {p}");
            assert_eq!(p["errors"][0]["field"], "cursor", "{p}");
        }
    }
    // The big run's cursor is not the small run's.
    let (s, p) = c
        .get(&format!(
            "/executions/{small}/results?limit=1&cursor={cursor}"
        ))
        .await;
    assert_eq!(
        (s, &p["errors"][0]["field"]),
        (422, &json!("cursor")),
        "{p}"
    );
}
