//! Typed results: a result with integers, decimals, booleans, dates, timestamps and empty
//! cells pages back typed as JSON while its CSV stays byte for byte what AMC served; a
//! result stored by an earlier build (names only) is still served, as strings; and with a
//! short `AMP_RESULTS_RETENTION` the stored result is removed, the run keeps its row and
//! says so, and its results answer 410.

use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::{Value, json};
use std::time::Duration;
use testkit::{Client, System, SystemOptions};

/// What amc-sim serves (set through its admin API): CRLF line ends, quoted fields, a
/// quoted header, every type, empty cells and the precision edge cases.
const CSV: &str = "\"campaign\",impressions,spend,active,day,seen_at,note\r\n\
\"camp \"\"A\"\"\",9007199254740993,0.1,true,2026-01-01,2026-01-01 10:00:00.123,\r\n\
\"b,c\",-42,9007199254740993,FALSE,2026-01-02,2026-01-02T11:30:00Z,x\r\n\
d,,12.50,,,,\r\n";

const SQL: &str = "SELECT * FROM typed_cells /* sim_result=typed */";

/// Runs [`SQL`] to `succeeded`; returns the workflow and execution ids.
async fn run_typed(sys: &System, c: &mut Client, amc_instance: &str) -> (String, String) {
    sys.sim_admin("results", json!({"name": "typed", "csv": CSV}))
        .await
        .expect("set the result");
    c.register_and_login(&format!("{amc_instance}@example.com"))
        .await;
    let setup = c.first_run_setup(amc_instance, 10, SQL, json!({})).await;
    let id = c.run(&setup.workflow_id, json!({})).await;
    let runs = c
        .wait_terminal(std::slice::from_ref(&id), Duration::from_secs(30))
        .await;
    assert_eq!(runs[0]["status"], "succeeded", "{}", runs[0]);
    assert_eq!(runs[0]["row_count"], 3, "{}", runs[0]);
    (setup.workflow_id, id)
}

async fn csv_bytes(c: &Client, id: &str) -> (u16, String, Vec<u8>) {
    let resp = c
        .http
        .get(format!("{}/executions/{id}/results?format=csv", c.base))
        .bearer_auth(c.token.as_ref().expect("token"))
        .send()
        .await
        .expect("csv request");
    let status = resp.status().as_u16();
    let ct = resp.headers()["content-type"]
        .to_str()
        .unwrap_or_default()
        .to_owned();
    (status, ct, resp.bytes().await.expect("body").to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_come_back_typed_and_the_csv_unchanged() {
    let sys = System::start(SystemOptions::default())
        .await
        .expect("system");
    let mut c = sys.client();
    let (_, id) = run_typed(&sys, &mut c, "amctyped").await;

    let (s, e) = c.get(&format!("/executions/{id}")).await;
    assert_eq!(s, 200, "{e}");
    assert_eq!(e["results_expired_at"], Value::Null, "{e}");
    let columns = json!([
        "campaign",
        "impressions",
        "spend",
        "active",
        "day",
        "seen_at",
        "note"
    ]);
    assert_eq!(e["columns"], columns, "{e}");

    // Two pages: the types hold for the whole result, whatever the page.
    let (s, first) = c.get(&format!("/executions/{id}/results?limit=2")).await;
    assert_eq!(s, 200, "{first}");
    let cursor = first["next_cursor"].as_str().expect("a cursor");
    let (s, second) = c
        .get(&format!("/executions/{id}/results?limit=2&cursor={cursor}"))
        .await;
    assert_eq!(s, 200, "{second}");
    assert_eq!(second["next_cursor"], Value::Null);
    let types = json!([
        "string",
        "integer",
        "decimal",
        "boolean",
        "date",
        "timestamp",
        "string"
    ]);
    for page in [&first, &second] {
        assert_eq!(page["columns"], columns, "{page}");
        assert_eq!(page["column_types"], types, "{page}");
    }
    assert_eq!(
        first["rows"],
        json!([
            [
                "camp \"A\"",
                9_007_199_254_740_993_i64,
                0.1,
                true,
                "2026-01-01",
                "2026-01-01 10:00:00.123",
                null
            ],
            [
                "b,c",
                -42,
                "9007199254740993",
                false,
                "2026-01-02",
                "2026-01-02T11:30:00Z",
                "x"
            ],
        ])
    );
    assert_eq!(
        second["rows"],
        json!([["d", null, 12.5, null, null, null, null]])
    );
    // The exact digits of the 64-bit integer are on the wire.
    let raw = c
        .http
        .get(format!("{}/executions/{id}/results?limit=1", c.base))
        .bearer_auth(c.token.as_ref().expect("token"))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("text");
    assert!(raw.contains(",9007199254740993,0.1,true,"), "{raw}");

    let (s, ct, body) = csv_bytes(&c, &id).await;
    assert_eq!(s, 200);
    assert!(ct.starts_with("text/csv"), "{ct}");
    assert_eq!(String::from_utf8(body).expect("utf-8"), CSV);

    // A result stored before types existed (its columns a plain list of names) is served
    // as it was: every cell a string.
    let db = sys.db.connect().await.expect("db");
    db.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "UPDATE executions SET result_columns = $2 WHERE id = $1",
        [
            uuid::Uuid::parse_str(&id).expect("uuid").into(),
            columns.clone().into(),
        ],
    ))
    .await
    .expect("store the old form");
    let (s, old) = c.get(&format!("/executions/{id}/results?limit=3")).await;
    assert_eq!(s, 200, "{old}");
    assert_eq!(old["column_types"], json!(vec!["string"; 7]), "{old}");
    assert_eq!(
        old["rows"][2],
        json!(["d", "", "12.50", "", "", "", ""]),
        "{old}"
    );
    let (s, e) = c.get(&format!("/executions/{id}")).await;
    assert_eq!((s, &e["columns"]), (200, &columns), "{e}");
    sys.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_past_their_retention_are_removed_and_answer_410() {
    let sys = System::start(SystemOptions {
        env: vec![
            ("AMP_RESULTS_RETENTION", "2s".into()),
            ("AMP_PRUNE_INTERVAL", "1s".into()),
        ],
        ..SystemOptions::default()
    })
    .await
    .expect("system");
    let mut c = sys.client();
    let (workflow, id) = run_typed(&sys, &mut c, "amcretention").await;
    // A collection of two days: its combined results go when its windows' do.
    let (s, coll) = c
        .post(
            "/collections",
            json!({"workflow_id": workflow, "granularity": "day", "start": "2026-01-01", "end": "2026-01-03"}),
        )
        .await;
    assert_eq!(s, 201, "{coll}");
    let coll = coll["id"].as_str().expect("collection id").to_owned();
    let file = sys.results_dir.join(format!("{id}.csv"));
    assert!(file.exists(), "{} is stored", file.display());

    // Removed within the retention and a pass or two.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let run = loop {
        let (s, e) = c.get(&format!("/executions/{id}")).await;
        assert_eq!(s, 200, "{e}");
        if !e["results_expired_at"].is_null() || tokio::time::Instant::now() > deadline {
            break e;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(run["results_expired_at"].is_string(), "{run}");
    // The run keeps its row: status, row count and columns.
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["row_count"], 3, "{run}");
    assert_eq!(run["columns"][0], "campaign", "{run}");
    assert!(!file.exists(), "{} was removed", file.display());

    let (s, p) = c.get(&format!("/executions/{id}/results")).await;
    assert_eq!(s, 410, "{p}");
    assert_eq!(p["status"], 410, "{p}");
    assert!(
        p["detail"].as_str().is_some_and(|d| d.contains("expired")),
        "{p}"
    );
    let (s, ct, _) = csv_bytes(&c, &id).await;
    assert_eq!(s, 410);
    assert!(ct.starts_with("application/problem+json"), "{ct}");

    // The collection's windows succeed, then expire: its combined results answer 410
    // rather than leave their rows out.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let (s, p) = loop {
        let (s, p) = c.get(&format!("/collections/{coll}/results")).await;
        if s == 410 || tokio::time::Instant::now() > deadline {
            break (s, p);
        }
        assert_eq!(s, 200, "{p}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(s, 410, "{p}");
    assert!(
        p["detail"].as_str().is_some_and(|d| d.contains("expired")),
        "{p}"
    );
    let (s, _) = c
        .get(&format!("/collections/{coll}/results?format=csv"))
        .await;
    assert_eq!(s, 410);
    sys.cleanup().await;
}
