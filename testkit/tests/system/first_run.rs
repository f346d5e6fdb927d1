//! CONTRACT's first run, end to end over HTTP.

use crate::{SQL, rendered};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::json;
use std::time::Duration;
use testkit::{System, SystemOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_contract_walk_through_reaches_succeeded_and_returns_the_rows() {
    let sys = System::start(SystemOptions::default())
        .await
        .expect("system");
    let mut c = sys.client();
    c.register_and_login("first@example.com").await;
    let (s, me) = c.get("/me").await;
    assert_eq!((s, me["email"].as_str()), (200, Some("first@example.com")));
    let setup = c
        .first_run_setup("amcfirst", 10, SQL, json!({"n": 0}))
        .await;
    let (s, conn) = c.get("/amazon/connection").await;
    assert_eq!((s, conn["status"].as_str()), (200, Some("active")));

    // 1,000+ rows so that paging is exercised.
    let id = c.run(&setup.workflow_id, json!({"n": 1234})).await;
    let runs = c
        .wait_terminal(std::slice::from_ref(&id), Duration::from_secs(60))
        .await;
    let e = &runs[0];
    assert_eq!(e["status"], "succeeded", "{e}");
    assert!(e["amc_execution_id"].is_string());
    assert!(e["completed_at"].is_string());
    assert!(e["error"].is_null());
    let expected = amc_sim::expected_rows(&rendered(1234));
    assert_eq!(e["row_count"].as_u64(), Some(expected));
    let trail: Vec<&str> = e["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["to_status"].as_str().unwrap())
        .collect();
    assert_eq!(
        trail,
        ["queued", "submitting", "running", "fetching", "succeeded"]
    );

    // JSON pages, three rows at a time, until next_cursor is null.
    let mut rows = Vec::new();
    let mut cursor = String::new();
    loop {
        let (s, page) = c
            .get(&format!("/executions/{id}/results?limit=3&cursor={cursor}"))
            .await;
        assert_eq!(s, 200, "{page}");
        assert_eq!(
            page["columns"],
            json!(["campaign", "impressions", "clicks", "spend"])
        );
        rows.extend(page["rows"].as_array().unwrap().clone());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_string(),
            None => break,
        }
    }
    assert_eq!(rows.len() as u64, expected);
    assert_eq!(rows[0][0], "campaign_0");

    // The same rows as CSV, byte for byte what amc-sim served.
    let resp = c
        .http
        .get(format!("{}/executions/{id}/results?format=csv", c.base))
        .bearer_auth(c.token.as_ref().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let csv = resp.text().await.unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("campaign,impressions,clicks,spend"));
    // The JSON cells are the CSV's, typed.
    let csv_rows: Vec<Vec<serde_json::Value>> = lines
        .map(|l| crate::results::typed(l.split(',').map(str::to_string).collect()))
        .collect();
    let json_rows: Vec<Vec<serde_json::Value>> =
        rows.iter().map(|r| r.as_array().unwrap().clone()).collect();
    assert_eq!(csv_rows, json_rows);

    // The refresh token's plaintext is nowhere in the database, in any table.
    let db = sys.db.connect().await.unwrap();
    let tables = db
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
        ))
        .await
        .unwrap();
    assert!(tables.len() > 10);
    for t in tables {
        let table: String = t.try_get("", "table_name").unwrap();
        let sql = format!(
            "SELECT count(*) AS n FROM \"{table}\" x WHERE strpos(row_to_json(x)::text, $1) > 0 OR strpos(encode(convert_to(row_to_json(x)::text, 'UTF8'), 'hex'), $2) > 0"
        );
        let hit = db
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                sql,
                [
                    "test-refresh-token".into(),
                    hex::encode("test-refresh-token").into(),
                ],
            ))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            hit.try_get::<i64>("", "n").unwrap(),
            0,
            "refresh token plaintext found in {table}"
        );
    }
    let stats = sys.sim_stats().await.unwrap();
    assert_eq!(
        stats["token_exchanges"].as_u64(),
        Some(1),
        "the PUT's exchange is reused by the worker until it nears expiry"
    );
    sys.cleanup().await;
}
