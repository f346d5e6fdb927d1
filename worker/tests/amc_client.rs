//! The worker's AMC client against amc-sim: the SQL it sends ad hoc is the rendered query
//! on one line (AMC's ad hoc guide: "The AMC API does not support newline characters in
//! the SQL query"; amc-sim/README.md, "The engine's AMC client"), and it lists executions
//! across pages until a page has no `nextToken` (amc-sim/README.md, "The last page of a
//! list has no `nextToken`"). A query too big for an ad hoc run goes through a saved
//! workflow that saving again never duplicates. No database or Redis: only the client and
//! the simulator.

use chrono::NaiveDate;
use common::amc::{
    AmcClient, AmcConfig, AmcTarget, CreateExecution, ErrorClass, ExecutionQuery, LwaClient,
};
use common::ids::{AmcInstanceId, EntityId, MarketplaceId, Region};
use common::saved_workflow::SavedWorkflow;
use serde_json::{Value, json};

struct Setup {
    sim: amc_sim::SimHandle,
    client: AmcClient,
    token: String,
    entity: EntityId,
    marketplace: MarketplaceId,
    instance: AmcInstanceId,
}

impl Setup {
    async fn new() -> Self {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let sim = amc_sim::spawn(amc_sim::SimConfig::for_tests())
            .await
            .expect("amc-sim");
        let config = AmcConfig {
            base_url: Some(sim.base_url()),
            lwa_token_url: Some(sim.token_url()),
            ..AmcConfig::new("dev-client", "dev-secret")
        };
        let token = LwaClient::new(config.clone())
            .expect("lwa client")
            .refresh(Region::NA, "Atzr|client-test")
            .await
            .expect("token")
            .access_token;
        Self {
            client: AmcClient::new(config).expect("client"),
            sim,
            token,
            entity: EntityId("ENTITY1AA1AA11AAA1".into()),
            marketplace: MarketplaceId("ATVPDKIKX0DER".into()),
            instance: AmcInstanceId(format!("amc{}", uuid::Uuid::new_v4().simple())),
        }
    }

    fn target(&self) -> AmcTarget<'_> {
        AmcTarget {
            region: Region::NA,
            entity_id: &self.entity,
            marketplace_id: &self.marketplace,
            instance_id: &self.instance,
            access_token: &self.token,
        }
    }

    fn create(sql: String) -> CreateExecution {
        Self::run_of(ExecutionQuery::AdHoc(sql))
    }

    fn run_of(query: ExecutionQuery) -> CreateExecution {
        let day = |d| {
            NaiveDate::from_ymd_opt(2026, 1, d)
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .expect("date")
        };
        CreateExecution {
            query,
            time_window_start: day(5),
            time_window_end: day(12),
            time_zone: "America/New_York".into(),
        }
    }

    async fn stats(&self) -> Value {
        reqwest::get(format!("{}/sim/admin/stats", self.sim.base_url()))
            .await
            .expect("stats")
            .json()
            .await
            .expect("stats json")
    }

    /// The SQL of every run the simulator received, in order.
    async fn received_sql(&self) -> Vec<String> {
        self.stats().await["runs"]
            .as_array()
            .expect("runs")
            .iter()
            .map(|r| r["sql_query"].as_str().expect("sql").to_owned())
            .collect()
    }
}

/// A workflow's SQL over several lines is rendered onto one line (`--` comments dropped,
/// a space where a line broke) and AMC (here amc-sim) receives exactly that.
#[tokio::test]
async fn multi_line_sql_is_sent_on_one_line() {
    let s = Setup::new().await;
    let template = "SELECT campaign,\n       SUM(impressions) AS impressions -- per campaign\nFROM dsp_impressions\nWHERE advertiser = {{adv}}\nGROUP BY campaign;\n";
    let params = json!({"adv": "Acme"});
    let rendered = common::sql::render(template, params.as_object().expect("map")).expect("render");
    assert!(!rendered.contains('\n'), "{rendered}");
    assert!(
        !rendered.contains("per campaign"),
        "comments are dropped: {rendered}"
    );
    assert!(rendered.contains("WHERE advertiser = 'Acme'"), "{rendered}");
    let e = s
        .client
        .create_execution(&s.target(), &Setup::create(rendered.clone()))
        .await
        .expect("AMC accepts the query");
    assert_eq!(e.status.as_str(), "PENDING");
    assert_eq!(s.received_sql().await, vec![rendered]);
}

/// 150 executions are two pages of 100 at AMC; the client follows `nextToken` and stops
/// on the page without one, listing each execution once.
#[tokio::test]
async fn list_executions_follows_next_token_to_the_last_page() {
    let s = Setup::new().await;
    let since = chrono::Utc::now().naive_utc() - chrono::Duration::minutes(1);
    for i in 0..150 {
        s.client
            .create_execution(&s.target(), &Setup::create(format!("SELECT {i}\nFROM t")))
            .await
            .expect("create");
    }
    let listed = s
        .client
        .list_executions(&s.target(), since, true)
        .await
        .expect("list");
    let mut sql: Vec<String> = listed.into_iter().filter_map(|e| e.sql_query).collect();
    sql.sort();
    let mut sent = s.received_sql().await;
    sent.sort();
    assert_eq!(sql.len(), 150);
    assert_eq!(sql, sent);
}

/// A query over amc-sim's ad hoc limit (an assumption, amc-sim/README.md "Ad hoc SQL has a
/// size limit") is refused ad hoc, and runs once saved as a workflow: saving it again (a
/// retry, a second worker) reads the workflow AMC already has and changes nothing; other
/// SQL under the same id updates it; the execution names the workflow and runs its SQL;
/// deleting twice succeeds (the second finds nothing to delete).
#[tokio::test]
async fn a_big_query_runs_through_one_saved_workflow() {
    let s = Setup::new().await;
    let big = format!(
        "SELECT campaign FROM dsp_impressions WHERE campaign IN ({})",
        (0..12_000)
            .map(|i| format!("'c{i:06}'"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    assert!(big.len() > common::config::DEFAULT_AMC_ADHOC_MAX_BYTES);
    let refused = s
        .client
        .create_execution(&s.target(), &Setup::create(big.clone()))
        .await
        .expect_err("too big for an ad hoc run");
    assert_eq!(
        (refused.class, refused.status),
        (ErrorClass::Permanent, Some(400))
    );
    let saved = SavedWorkflow::for_sql(&big);
    for _ in 0..2 {
        s.client
            .save_workflow(&s.target(), &saved.id, &big)
            .await
            .expect("saved");
    }
    let stats = s.stats().await;
    assert_eq!(stats["workflow_creates"], 1);
    assert_eq!(stats["workflow_updates"], 0);
    assert_eq!(stats["workflows"].as_array().map(Vec::len), Some(1));
    assert_eq!(stats["workflows"][0]["workflow_id"], saved.id.as_str());
    assert_eq!(stats["workflows"][0]["sql_bytes"], big.len());
    let e = s
        .client
        .create_execution(
            &s.target(),
            &Setup::run_of(ExecutionQuery::Saved(saved.id.clone())),
        )
        .await
        .expect("run by workflowId");
    assert_eq!(e.workflow_id.as_deref(), Some(saved.id.as_str()));
    assert_eq!(s.received_sql().await, vec![big.clone()]);
    s.client
        .save_workflow(&s.target(), &saved.id, "SELECT 1")
        .await
        .expect("updated");
    assert_eq!(
        s.client
            .workflow_sql(&s.target(), &saved.id)
            .await
            .expect("read")
            .as_deref(),
        Some("SELECT 1")
    );
    assert_eq!(s.stats().await["workflow_updates"], 1);
    for _ in 0..2 {
        s.client
            .delete_workflow(&s.target(), &saved.id)
            .await
            .expect("deleted, or already gone");
    }
    let stats = s.stats().await;
    assert_eq!(stats["workflow_deletes"], 1);
    assert_eq!(stats["workflows"], json!([]));
}
