//! The worker's AMC client against amc-sim: the SQL it sends ad hoc is the rendered query
//! on one line (AMC's ad hoc guide: "The AMC API does not support newline characters in
//! the SQL query"; amc-sim/README.md, "The engine's AMC client"), and it lists executions
//! across pages until a page has no `nextToken` (amc-sim/README.md, "The last page of a
//! list has no `nextToken`"). No database or Redis: only the client and the simulator.

use chrono::NaiveDate;
use common::amc::{AmcClient, AmcConfig, AmcTarget, CreateExecution, LwaClient};
use common::ids::{AmcInstanceId, EntityId, MarketplaceId, Region};
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
        let day = |d| {
            NaiveDate::from_ymd_opt(2026, 1, d)
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .expect("date")
        };
        CreateExecution {
            sql_query: sql,
            time_window_start: day(5),
            time_window_end: day(12),
            time_zone: "America/New_York".into(),
        }
    }

    /// The SQL of every run the simulator received, in order.
    async fn received_sql(&self) -> Vec<String> {
        let stats: Value = reqwest::get(format!("{}/sim/admin/stats", self.sim.base_url()))
            .await
            .expect("stats")
            .json()
            .await
            .expect("stats json");
        stats["runs"]
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
