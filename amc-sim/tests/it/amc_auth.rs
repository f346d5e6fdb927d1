//! Header and bearer checks on AMC routes.

use std::time::Duration;

use serde_json::{Value, json};

use crate::TestSim;

#[tokio::test]
async fn missing_headers_are_403() {
    let t = TestSim::start(|_| {}).await;
    for missing in [
        "Amazon-Advertising-API-ClientId",
        "Amazon-Advertising-API-AdvertiserId",
        "Amazon-Advertising-API-MarketplaceId",
    ] {
        let mut req = t.http.get(t.url("")).bearer_auth(&t.token);
        for h in [
            "Amazon-Advertising-API-ClientId",
            "Amazon-Advertising-API-AdvertiserId",
            "Amazon-Advertising-API-MarketplaceId",
        ] {
            if h != missing {
                req = req.header(h, "x");
            }
        }
        let resp = req.send().await.expect("send");
        assert_eq!(resp.status(), 403, "{missing}");
        let body: Value = resp.json().await.expect("json");
        assert_eq!(
            body,
            json!({"code":"403","details":"Unauthorized request."})
        );
    }
}

#[tokio::test]
async fn unknown_and_expired_tokens_are_401_or_configured_403() {
    let t = TestSim::start(|c| c.token_ttl = Duration::from_millis(1500)).await;
    assert_eq!(
        t.amc(reqwest::Method::GET, "")
            .send()
            .await
            .expect("ok")
            .status(),
        200
    );
    let resp = t
        .http
        .get(t.url(""))
        .bearer_auth("Atza|forged")
        .header("Amazon-Advertising-API-ClientId", "dev-client")
        .header("Amazon-Advertising-API-AdvertiserId", "ENTITY1AA1AA11AAA1")
        .header("Amazon-Advertising-API-MarketplaceId", "ATVPDKIKX0DER")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["code"], "401");
    assert_eq!(body["details"], "Authentication failed");
    assert!(body["requestId"].is_string());

    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert_eq!(
        t.amc(reqwest::Method::GET, "")
            .send()
            .await
            .expect("send")
            .status(),
        401
    );
    let ok = t
        .admin_post("config", json!({"expired_token_status": 403}))
        .await;
    assert_eq!(ok.status(), 200);
    let resp = t.amc(reqwest::Method::GET, "").send().await.expect("send");
    assert_eq!(resp.status(), 403);
    assert_eq!(
        resp.json::<Value>().await.expect("json"),
        json!({"code":"403","details":"Unauthorized request."})
    );
}

#[tokio::test]
async fn unknown_instance_is_403() {
    let t = TestSim::start(|_| {}).await;
    let ok = t
        .admin_post("unknown-instance", json!({"instance_id": t.instance}))
        .await;
    assert_eq!(ok.status(), 200);
    let resp = t.amc(reqwest::Method::GET, "").send().await.expect("send");
    assert_eq!(resp.status(), 403);
}

#[tokio::test]
async fn injected_faults_answer_429_and_504() {
    use amc_sim::faults::{FaultPlan, FaultRoute, FaultRule, HttpFault};
    let t = TestSim::start(|c| {
        c.faults = FaultPlan {
            rules: vec![
                FaultRule {
                    route: FaultRoute::List,
                    probability: 1.0,
                    fault: HttpFault::TooManyRequests {
                        retry_after_secs: 7,
                    },
                },
                FaultRule {
                    route: FaultRoute::Get,
                    probability: 1.0,
                    fault: HttpFault::GatewayTimeout,
                },
            ],
        }
    })
    .await;
    let resp = t.amc(reqwest::Method::GET, "").send().await.expect("list");
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "7");
    let resp = t.amc(reqwest::Method::GET, "/x").send().await.expect("get");
    assert_eq!(resp.status(), 504);
    assert_eq!(
        resp.json::<Value>().await.expect("json"),
        json!({"message":"Endpoint request timed out"})
    );
}
