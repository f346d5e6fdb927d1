//! Create-request validation answers 400 with AMC's error body.

use serde_json::{Value, json};

use crate::{TestSim, window_body};

#[tokio::test]
async fn invalid_creates_are_400() {
    let t = TestSim::start(|_| {}).await;
    let mut bad_zone = window_body("SELECT 1");
    bad_zone["timeWindowTimeZone"] = json!("Atlantis/Capital");
    let mut reversed = window_body("SELECT 1");
    reversed["timeWindowStart"] = json!("2024-01-09T00:00:00");
    let cases = [
        reversed,
        bad_zone,
        json!({"workflow":{"sqlQuery":"SELECT 1"},"workflowId":"wf-1"}),
        json!({"workflow":{"sqlQuery":"SELECT 1"},"parameterValues":{"n":{"deep":1}}}),
        json!({"workflow":{"sqlQuery":""}}),
        json!({"workflowId":"never-saved"}),
    ];
    for body in cases {
        let resp = t
            .amc(reqwest::Method::POST, "")
            .header(
                "Content-Type",
                "application/vnd.amcworkflowexecutions.v1+json",
            )
            .body(body.to_string())
            .send()
            .await
            .expect("create");
        assert_eq!(resp.status(), 400, "{body}");
        let err: Value = resp.json().await.expect("json");
        assert_eq!(err["code"], "400");
        assert!(err["details"].is_string());
    }
    assert_eq!(t.admin_get("stats").await["creates"], 0);
    // The vendor content type is accepted for a valid body.
    let resp = t
        .amc(reqwest::Method::POST, "")
        .header(
            "Content-Type",
            "application/vnd.amcworkflowexecutions.v1+json",
        )
        .body(window_body("SELECT 1").to_string())
        .send()
        .await
        .expect("create");
    assert_eq!(resp.status(), 200);
}
