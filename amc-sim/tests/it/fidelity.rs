//! One test per fidelity rule of the README, each naming its public source. Sources:
//! - GUIDE: the Amazon Ads AMC guides, read in `idealerror/amazon-ads-api-docs`
//!   (`en-us/guides/amazon-marketing-cloud/...`, `en-us/reference/concepts/errors.md`).
//! - NOTEBOOK: `amzn/ads-advanced-tools-docs`
//!   `amazon_marketing_cloud/AMC_API_sample_python_collection.ipynb`.
//! - WFM: `aws-solutions/amazon-marketing-cloud-insights-on-aws`, `wfm_amc_api_interface.py`
//!   (`AMCAPIs`), its tests, and `.../platform_manager/amazon_ads/amc/WFM_Interface.ipynb`.

use serde_json::{Value, json};

use crate::{TestSim, window_body};

use reqwest::Method;

/// `{"workflowId": id, "sqlQuery": sql}` as the notebook sends it.
fn workflow(id: &str, sql: &str) -> Value {
    json!({"workflowId": id, "sqlQuery": sql, "filteredMetricsDiscriminatorColumn": "filtered",
           "distinctUserCountColumn": "du_count", "filteredReasonColumn": "true"})
}

async fn save_workflow(t: &TestSim, id: &str, sql: &str) {
    let (code, v) = TestSim::send(
        t.reporting(Method::POST, "/workflows")
            .json(&workflow(id, sql)),
    )
    .await;
    assert_eq!((code, v), (200, json!({})));
}

/// GUIDE `en-us/reference/concepts/errors.md` ("the universal format for error response
/// objects": `code`, `details`; 404 and 405 included); WFM `AMCAPIResponse` parses every
/// answer as JSON.
#[tokio::test]
async fn errors_md_unknown_routes_and_methods_answer_json() {
    let t = TestSim::start(|_| {}).await;
    let base = t.sim.base_url();
    for (method, path, code) in [
        (Method::GET, "/amc/nowhere".to_owned(), 404),
        (
            Method::GET,
            format!("/amc/reporting/{}/nothing", t.instance),
            404,
        ),
        (
            Method::PATCH,
            format!("/amc/reporting/{}/workflowExecutions", t.instance),
            405,
        ),
        (Method::POST, "/auth/o2/token/extra".to_owned(), 404),
    ] {
        let resp = t
            .at(method.clone(), &format!("{base}{path}"))
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status().as_u16(), code, "{method} {path}");
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .is_ok_and(|c| c.starts_with("application/json"))
        );
        let v: Value = resp.json().await.expect("json body");
        assert_eq!(v["code"], code.to_string());
        assert!(v["details"].is_string());
    }
}

/// WFM `get_execution_status_by_minimum_create_time` pages while
/// `response.get('nextToken', '')` is not `''` (a `null` would page forever), its test
/// fixture has no `nextToken`, and GUIDE `reporting/create-workflow.md`'s sample list of
/// workflows has none: the last page leaves the field out.
#[tokio::test]
async fn wfm_paging_last_page_has_no_next_token() {
    let t = TestSim::start(|c| c.run_duration = std::time::Duration::from_secs(60)).await;
    for n in 0..3 {
        t.create(&format!("SELECT {n}")).await;
        save_workflow(&t, &format!("wf-{n}"), "SELECT 1").await;
    }
    for path in ["/workflowExecutions", "/workflows"] {
        let (_, first) = TestSim::send(t.reporting(Method::GET, &format!("{path}?limit=2"))).await;
        let token = first["nextToken"].as_str().expect("a next page").to_owned();
        let (_, last) =
            TestSim::send(t.reporting(Method::GET, &format!("{path}?limit=2&nextToken={token}")))
                .await;
        let obj = last.as_object().expect("object");
        assert!(!obj.contains_key("nextToken"), "{path}: {last}");
        // The AWS solution's first request sends an empty nextToken.
        let (code, _) =
            TestSim::send(t.reporting(Method::GET, &format!("{path}?nextToken="))).await;
        assert_eq!(code, 200);
    }
}

/// WFM `WFM_Interface.ipynb` creates workflows and ad hoc executions with multi-line SQL and
/// its client sends it unchanged; NOTEBOOK's workflow SQL starts and ends with a line break.
/// (GUIDE `reporting/ad-hoc-workflow.md` asks for one line; the clients show AMC takes more.)
#[tokio::test]
async fn wfm_interface_ipynb_multi_line_sql_is_accepted() {
    let t = TestSim::start(|_| {}).await;
    let sql = "\n            SELECT \n                advertiser, \n                campaign\n            FROM dsp_impressions \n            GROUP BY advertiser, campaign\n        ";
    let id = t
        .create_body(
            json!({"workflow": {"workflowId": "adhoc-test-1", "sqlQuery": sql},
                                     "timeWindowType": "MOST_RECENT_WEEK"}),
        )
        .await;
    let (_, v) = TestSim::send(t.amc(Method::GET, &format!("/{id}?includeWorkflow=true"))).await;
    assert_eq!(v["sqlQuery"], sql);
    save_workflow(&t, "test-wfm-1", sql).await;
}

/// NOTEBOOK and WFM `WFM_Interface.ipynb` send `"ignoreDataGaps": "True"`,
/// `"workflowExecutionTimeoutSeconds": "86400"` and a `Z` on `timeWindowStart`; GUIDE
/// `reporting/ad-hoc-workflow.md` answers them as a boolean and a number.
#[tokio::test]
async fn notebook_value_types_are_accepted() {
    let t = TestSim::start(|_| {}).await;
    save_workflow(&t, "workflow-name", "SELECT campaign FROM x").await;
    let id = t
        .create_body(json!({
            "timeWindowStart": "2024-02-01T00:00:00Z",
            "timeWindowEnd": "2024-03-31T00:00:00Z",
            "timeWindowType": "EXPLICIT",
            "workflowId": "workflow-name",
            "ignoreDataGaps": "True",
            "workflowExecutionTimeoutSeconds": "86400",
            "requireSyntheticData": false,
        }))
        .await;
    let v = t.get(&id).await;
    assert_eq!(v["ignoreDataGaps"], true);
    assert_eq!(v["workflowExecutionTimeoutSeconds"], 86_400);
    let mut bad = window_body("SELECT 1");
    bad["ignoreDataGaps"] = json!("perhaps");
    let (code, err) = TestSim::send(t.amc(Method::POST, "").json(&bad)).await;
    assert_eq!(code, 400);
    assert_eq!(err["code"], "400");
}

/// GUIDE `reporting/create-workflow.md` ("Include custom parameters") passes
/// `"myCustomParameter1": 9001` in `parameterValues`.
#[tokio::test]
async fn create_workflow_md_parameter_values_may_be_numbers() {
    let t = TestSim::start(|_| {}).await;
    let mut body = window_body("SELECT CUSTOM_PARAMETER('myCustomParameter1')");
    body["parameterValues"] = json!({"myCustomParameter1": 9001, "myCustomParameter2": "x"});
    let id = t.create_body(body).await;
    assert_eq!(
        t.get(&id).await["parameterValues"]["myCustomParameter1"],
        9001
    );
}

/// GUIDE `reporting/create-workflow.md` (create, list, get, update, delete; id characters)
/// and WFM `create_workflow` (the duplicate text it matches, then falls back to PUT; every
/// answer, DELETE's too, parsed as JSON).
#[tokio::test]
async fn create_workflow_md_saved_workflows_crud() {
    let t = TestSim::start(|_| {}).await;
    save_workflow(&t, "my-first-workflow", "SELECT 1").await;
    let (code, dup) = TestSim::send(
        t.reporting(Method::POST, "/workflows")
            .json(&workflow("my-first-workflow", "SELECT 2")),
    )
    .await;
    assert_eq!(code, 400);
    assert_eq!(dup["code"], "400");
    assert_eq!(
        dup["details"],
        "Workflow with ID my-first-workflow already exists."
    );
    assert_eq!(dup["message"], dup["details"]);
    let (code, bad) = TestSim::send(
        t.reporting(Method::POST, "/workflows")
            .json(&workflow("has space", "SELECT 1")),
    )
    .await;
    assert_eq!((code, bad["code"].clone()), (400, json!("400")));

    let (_, got) = TestSim::send(t.reporting(Method::GET, "/workflows/my-first-workflow")).await;
    assert_eq!(got["workflow"]["sqlQuery"], "SELECT 1");
    assert_eq!(
        got["workflow"]["filteredMetricsDiscriminatorColumn"],
        "filtered"
    );
    let (code, v) = TestSim::send(
        t.reporting(Method::PUT, "/workflows/my-first-workflow")
            .json(&workflow("my-first-workflow", "SELECT 2")),
    )
    .await;
    assert_eq!((code, v), (200, json!({})));
    let (_, listed) = TestSim::send(t.reporting(Method::GET, "/workflows")).await;
    assert_eq!(listed["workflows"][0]["sqlQuery"], "SELECT 2");
    let (code, v) =
        TestSim::send(t.reporting(Method::DELETE, "/workflows/my-first-workflow")).await;
    assert_eq!((code, v), (200, json!({})));
    let (code, gone) =
        TestSim::send(t.reporting(Method::GET, "/workflows/my-first-workflow")).await;
    assert_eq!(code, 400);
    assert_eq!(
        gone["details"],
        "Workflow with ID my-first-workflow does not exist."
    );
    let (code, _) = TestSim::send(
        t.reporting(Method::PUT, "/workflows/never")
            .json(&workflow("never", "SELECT 1")),
    )
    .await;
    assert_eq!(code, 400);
}

/// GUIDE `reporting/execute-workflow.md` (execute a saved workflow by `workflowId`; the
/// answer names it) and NOTEBOOK (list executions with `?workflowId=`).
#[tokio::test]
async fn execute_workflow_md_runs_a_saved_workflow() {
    let t = TestSim::start(|_| {}).await;
    let sql = "SELECT campaign, SUM(total_purchases) AS total_orders_9d FROM amazon_attributed_events_by_traffic_time GROUP BY campaign";
    save_workflow(&t, "my-first-workflow", sql).await;
    let body = json!({"workflowId": "my-first-workflow", "timeWindowStart": "2023-05-20T00:00:00",
                      "timeWindowEnd": "2023-08-03T00:00:00", "timeWindowType": "EXPLICIT",
                      "timeWindowTimeZone": "America/New_York"});
    let id = t.create_body(body).await;
    t.create("SELECT other").await;
    let (_, v) = TestSim::send(t.amc(Method::GET, &format!("/{id}?includeWorkflow=true"))).await;
    assert_eq!(v["workflowId"], "my-first-workflow");
    assert_eq!(v["sqlQuery"], sql);
    let (_, listed) = TestSim::send(t.amc(Method::GET, "?workflowId=my-first-workflow")).await;
    let execs = listed["executions"].as_array().expect("executions");
    assert_eq!(execs.len(), 1);
    assert_eq!(execs[0]["workflowExecutionId"], id.as_str());
    let stats = t.admin_get("stats").await;
    assert!(
        stats["runs"]
            .as_array()
            .expect("runs")
            .iter()
            .any(|r| r["workflow_id"] == "my-first-workflow")
    );
    let (code, err) = TestSim::send(
        t.amc(Method::POST, "")
            .json(&json!({"workflowId": "missing", "timeWindowType": "MOST_RECENT_DAY"})),
    )
    .await;
    assert_eq!(code, 400);
    assert_eq!(err["details"], "Workflow with ID missing does not exist.");
}

/// GUIDE `reporting/create-workflow.md`: "AMC will not allow you to delete a workflow if the
/// workflow is referenced by a schedule."
#[tokio::test]
async fn create_workflow_md_a_scheduled_workflow_cannot_be_deleted() {
    let t = TestSim::start(|_| {}).await;
    save_workflow(&t, "wf-1", "SELECT 1").await;
    let schedule = json!({"scheduleId": "s1", "workflowId": "wf-1", "aggregationPeriod": "Daily"});
    let (code, _) = TestSim::send(t.reporting(Method::POST, "/schedules").json(&schedule)).await;
    assert_eq!(code, 200);
    let (code, err) = TestSim::send(t.reporting(Method::DELETE, "/workflows/wf-1")).await;
    assert_eq!(code, 400);
    assert!(err["details"].as_str().expect("details").contains("s1"));
}

/// GUIDE `reporting/schedule-workflow.md` (fields, CRUD, weekly start day defaults to the
/// day of creation) and NOTEBOOK (`'scheduleEnabled': 'True'`).
#[tokio::test]
async fn schedule_workflow_md_schedules_are_kept_with_their_fields() {
    let t = TestSim::start(|_| {}).await;
    save_workflow(&t, "workflow-name", "SELECT 1").await;
    let body = json!({"scheduleId": "schedule-id", "workflowId": "workflow-name",
                      "aggregationHourUtc": 8, "aggregationPeriod": "Daily",
                      "aggregationStartDay": "Tuesday", "scheduleEnabled": "True"});
    let (code, v) = TestSim::send(t.reporting(Method::POST, "/schedules").json(&body)).await;
    assert_eq!((code, v), (200, json!({})));
    let (code, _) = TestSim::send(t.reporting(Method::POST, "/schedules").json(&body)).await;
    assert_eq!(code, 400, "duplicate scheduleId");
    let (_, got) = TestSim::send(t.reporting(Method::GET, "/schedules/schedule-id")).await;
    assert_eq!(got["schedule"]["scheduleEnabled"], true);
    assert_eq!(got["schedule"]["aggregationHourUtc"], 8);
    let weekly = json!({"workflowId": "workflow-name", "aggregationPeriod": "Weekly",
                        "aggregationHourUtc": 16, "scheduleEnabled": false});
    let (code, _) = TestSim::send(
        t.reporting(Method::PUT, "/schedules/schedule-id")
            .json(&weekly),
    )
    .await;
    assert_eq!(code, 200);
    let (_, listed) = TestSim::send(t.reporting(Method::GET, "/schedules")).await;
    let s = &listed["schedules"][0];
    assert_eq!(s["aggregationPeriod"], "Weekly");
    assert!(s["aggregationStartDay"].is_string(), "{s}");
    assert!(!listed.as_object().expect("obj").contains_key("nextToken"));
    let orphan = json!({"scheduleId": "s2", "workflowId": "nope"});
    let (code, _) = TestSim::send(t.reporting(Method::POST, "/schedules").json(&orphan)).await;
    assert_eq!(code, 400);
    let (code, v) = TestSim::send(t.reporting(Method::DELETE, "/schedules/schedule-id")).await;
    assert_eq!((code, v), (200, json!({})));
    let (code, _) = TestSim::send(t.reporting(Method::GET, "/schedules/schedule-id")).await;
    assert_eq!(code, 400);
}

/// GUIDE `admin/account-management.md` (`GET /amc/accounts` needs only the client id and
/// token; `amcAccounts[].accountId/accountName/marketplaceId`) and NOTEBOOK (reads
/// `['amcAccounts'][X]['accountId']`).
#[tokio::test]
async fn account_management_md_lists_configured_accounts() {
    let t = TestSim::start(|_| {}).await;
    let url = format!("{}/amc/accounts", t.sim.base_url());
    let (code, v) = TestSim::send(
        t.http
            .get(&url)
            .bearer_auth(&t.token)
            .header("Amazon-Advertising-API-ClientId", "dev-client"),
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(v["amcAccounts"][0]["accountId"], "ENTITY1AA1AA11AAA1");
    assert_eq!(v["amcAccounts"][0]["marketplaceId"], "ATVPDKIKX0DER");
    let resp = t
        .admin_post(
            "accounts",
            json!([{"accountId": "ENTITY2BB", "accountName": "B"}]),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let (_, v) = TestSim::send(t.at(Method::GET, &url)).await;
    assert_eq!(
        v["amcAccounts"],
        json!([{"accountId": "ENTITY2BB", "accountName": "B",
                                           "marketplaceId": "ATVPDKIKX0DER"}])
    );
    let (code, _) = TestSim::send(t.http.get(&url).bearer_auth(&t.token)).await;
    assert_eq!(code, 403, "no client id");
}

/// GUIDE `admin/instance-management.md` (`GET /amc/instances`, `GET /amc/instances/{id}`,
/// the instance fields) and NOTEBOOK (reads `.json()['instances']`).
#[tokio::test]
async fn instance_management_md_lists_configured_instances() {
    let t = TestSim::start(|c| {
        c.instances = amc_sim::fixtures::parse_list(
            br#"[{"instanceId":"amcabc","instanceName":"brand-a","s3BucketName":"amc-brand-a"}]"#,
            "instances",
        )
        .expect("fixture");
    })
    .await;
    let base = t.sim.base_url();
    let (code, v) = TestSim::send(t.at(Method::GET, &format!("{base}/amc/instances"))).await;
    assert_eq!(code, 200);
    assert_eq!(v["instances"][0]["instanceId"], "amcabc");
    assert_eq!(v["instances"][0]["instanceType"], "STANDARD");
    assert_eq!(v["instances"][0]["s3BucketName"], "amc-brand-a");
    let (code, one) =
        TestSim::send(t.at(Method::GET, &format!("{base}/amc/instances/amcabc"))).await;
    assert_eq!(code, 200);
    assert_eq!(one["instance"]["instanceName"], "brand-a");
    let (code, err) =
        TestSim::send(t.at(Method::GET, &format!("{base}/amc/instances/other"))).await;
    assert_eq!((code, err["code"].clone()), (400, json!("400")));
    let resp = t
        .admin_post(
            "instances",
            json!({"instances": [{"instanceId": "amcxyz"}]}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let (_, v) = TestSim::send(t.at(Method::GET, &format!("{base}/amc/instances"))).await;
    assert_eq!(v["instances"][0]["instanceId"], "amcxyz");
}

/// The spec's `GET …/dataSources[/{dataSourceId}]` (a client generated from
/// `WorkflowManagementService_prod_3p.json`; amc-api.md S7) with table names and columns
/// from GUIDE `datasources/*.md`.
#[tokio::test]
async fn workflow_management_service_spec_lists_data_sources() {
    let t = TestSim::start(|_| {}).await;
    let (code, first) = TestSim::send(t.reporting(Method::GET, "/dataSources?limit=2")).await;
    assert_eq!(code, 200);
    assert_eq!(first["dataSources"].as_array().expect("list").len(), 2);
    let token = first["nextToken"].as_str().expect("more").to_owned();
    let (_, rest) =
        TestSim::send(t.reporting(Method::GET, &format!("/dataSources?nextToken={token}"))).await;
    assert!(rest.get("nextToken").is_none());
    let ids: Vec<&str> = first["dataSources"]
        .as_array()
        .into_iter()
        .chain(rest["dataSources"].as_array())
        .flatten()
        .filter_map(|d| d["dataSourceId"].as_str())
        .collect();
    assert!(ids.contains(&"dsp_impressions"), "{ids:?}");
    let (code, one) = TestSim::send(t.reporting(Method::GET, "/dataSources/dsp_impressions")).await;
    assert_eq!(code, 200);
    assert!(
        one["columns"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["name"] == "campaign"))
    );
    let (code, _) = TestSim::send(t.reporting(Method::GET, "/dataSources/no_such_table")).await;
    assert_eq!(code, 400);
}

/// GUIDE `en-us/reference/concepts/errors.md` (403: no access to the resource) and the
/// observed body for a wrong advertiser, `403 {"code":"403","details":"Unauthorized
/// request."}` (amc-api.md §5, S12): an advertiser marked unknown through the admin API.
#[tokio::test]
async fn errors_md_unknown_advertiser_is_403() {
    let t = TestSim::start(|_| {}).await;
    let resp = t
        .admin_post(
            "unknown-advertiser",
            json!({"advertiser_id": "ENTITY1AA1AA11AAA1"}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    for path in [
        "/workflowExecutions",
        "/workflows",
        "/schedules",
        "/dataSources",
    ] {
        let (code, v) = TestSim::send(t.reporting(Method::GET, path)).await;
        assert_eq!(code, 403, "{path}");
        assert_eq!(
            v,
            json!({"code": "403", "details": "Unauthorized request."})
        );
    }
    let other = t
        .http
        .get(t.url(""))
        .bearer_auth(&t.token)
        .header("Amazon-Advertising-API-ClientId", "dev-client")
        .header("Amazon-Advertising-API-AdvertiserId", "ENTITYOTHER")
        .header("Amazon-Advertising-API-MarketplaceId", "ATVPDKIKX0DER");
    let (code, _) = TestSim::send(other).await;
    assert_eq!(code, 200, "another advertiser is still served");
    let cfg_sim =
        TestSim::start(|c| c.unknown_advertisers = vec!["ENTITY1AA1AA11AAA1".into()]).await;
    let (code, _) = TestSim::send(cfg_sim.amc(Method::GET, "")).await;
    assert_eq!(code, 403, "from the configuration too");
}

/// No public source states AMC's size limit for ad hoc SQL: the simulator assumes 100 KiB
/// (`AMP_SIM_ADHOC_MAX_BYTES`, admin `adhoc_max_bytes`) and answers AMC's 400 body; a saved
/// workflow's SQL is not limited.
#[tokio::test]
async fn assumption_ad_hoc_sql_over_the_limit_is_400() {
    let t = TestSim::start(|c| c.adhoc_max_bytes = 64).await;
    let long = format!("SELECT 1 /* {} */", "x".repeat(100));
    let (code, err) = TestSim::send(t.amc(Method::POST, "").json(&window_body(&long))).await;
    assert_eq!(code, 400);
    assert_eq!(err["code"], "400");
    assert!(
        err["details"]
            .as_str()
            .expect("details")
            .contains("64 bytes")
    );
    save_workflow(&t, "long", &long).await;
    t.create_body(json!({"workflowId": "long", "timeWindowType": "MOST_RECENT_DAY"}))
        .await;
    let resp = t
        .admin_post("config", json!({"adhoc_max_bytes": 1000}))
        .await;
    assert_eq!(resp.status(), 200);
    t.create(&long).await;
    assert_eq!(t.admin_get("stats").await["creates"], 2);
}
