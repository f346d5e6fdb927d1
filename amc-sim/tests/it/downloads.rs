//! Download URLs and the streamed CSV behind them.

use std::time::Duration;

use amc_sim::expected_rows;
use serde_json::{Value, json};

use crate::TestSim;

async fn download_urls(t: &TestSim, id: &str) -> reqwest::Response {
    t.amc(reqwest::Method::GET, &format!("/{id}/downloadUrls"))
        .send()
        .await
        .expect("downloadUrls")
}

async fn succeeded(t: &TestSim, sql: &str) -> String {
    let id = t.create(sql).await["workflowExecutionId"]
        .as_str()
        .expect("id")
        .to_owned();
    t.wait_for(&id, "SUCCEEDED", Duration::from_secs(3)).await;
    id
}

#[tokio::test]
async fn unavailable_before_success_then_csv_matches() {
    let t = TestSim::start(|c| c.run_duration = Duration::from_millis(400)).await;
    let sql = "SELECT campaign FROM dsp_impressions";
    let id = t.create(sql).await["workflowExecutionId"]
        .as_str()
        .expect("id")
        .to_owned();
    let resp = download_urls(&t, &id).await;
    assert_eq!(resp.status(), 404);
    let details = format!("Execution with ID {id} is unavailable for download.");
    assert_eq!(
        resp.json::<Value>().await.expect("json"),
        json!({"code":"404","details":details})
    );
    t.admin_post("config", json!({"unavailable_status": 400}))
        .await;
    assert_eq!(download_urls(&t, &id).await.status(), 400);

    t.wait_for(&id, "SUCCEEDED", Duration::from_secs(3)).await;
    let body: Value = download_urls(&t, &id).await.json().await.expect("json");
    assert_eq!(body["metadataDownloadUrls"], json!([]));
    assert_eq!(body["nextToken"], Value::Null);
    let urls = body["downloadUrls"].as_array().expect("urls");
    assert_eq!(urls.len(), 1);
    let url = urls[0].as_str().expect("url");
    assert!(url.starts_with(&format!(
        "{}/sim/results/{id}/part-0.csv?expires=",
        t.sim.base_url()
    )));
    let resp = t.http.get(url).send().await.expect("csv");
    assert_eq!(resp.status(), 200);
    let csv = resp.text().await.expect("text");
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("campaign,impressions,clicks,spend"));
    assert_eq!(lines.count() as u64, expected_rows(sql));
    // Same query, same bytes.
    assert_eq!(
        t.http
            .get(url)
            .send()
            .await
            .expect("csv")
            .text()
            .await
            .expect("text"),
        csv
    );
}

#[tokio::test]
async fn large_results_stream_in_two_parts() {
    let t = TestSim::start(|_| {}).await;
    let sql = "SELECT campaign FROM x /* sim_rows=200000 */";
    let id = succeeded(&t, sql).await;
    let body: Value = download_urls(&t, &id).await.json().await.expect("json");
    let urls = body["downloadUrls"].as_array().expect("urls");
    assert_eq!(urls.len(), 2);
    let mut total = 0u64;
    for (n, url) in urls.iter().enumerate() {
        let csv = t
            .http
            .get(url.as_str().expect("url"))
            .send()
            .await
            .expect("csv")
            .text()
            .await
            .expect("text");
        let mut lines = csv.lines();
        assert_eq!(lines.next(), Some("campaign,impressions,clicks,spend"));
        let first = lines.next().expect("row");
        assert!(
            first.starts_with(&format!("campaign_{},", n as u64 * 100_000)),
            "{first}"
        );
        total += 1 + lines.count() as u64;
    }
    assert_eq!(total, expected_rows(sql));
}

#[tokio::test]
async fn expired_or_tampered_urls_are_403() {
    let t = TestSim::start(|c| c.download_url_ttl = Duration::from_millis(300)).await;
    let id = succeeded(&t, "SELECT 1").await;
    let body: Value = download_urls(&t, &id).await.json().await.expect("json");
    let url = body["downloadUrls"][0].as_str().expect("url").to_owned();
    let tampered = format!("{}0", url);
    let resp = t.http.get(&tampered).send().await.expect("get");
    assert_eq!(resp.status(), 403);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let resp = t.http.get(&url).send().await.expect("get");
    assert_eq!(resp.status(), 403);
    let xml = resp.text().await.expect("text");
    assert!(
        xml.contains("<Error><Code>AccessDenied</Code><Message>Request has expired</Message>"),
        "{xml}"
    );
}
