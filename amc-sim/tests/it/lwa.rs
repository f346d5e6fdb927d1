//! LWA token exchange.

use serde_json::{Value, json};

use crate::TestSim;

#[tokio::test]
async fn exchange_issues_tokens_and_counts() {
    let t = TestSim::start(|_| {}).await;
    let resp = t
        .http
        .post(t.sim.token_url())
        .json(
            &json!({"grant_type":"refresh_token","refresh_token":"Atzr|json",
                      "client_id":"dev-client","client_secret":"dev-secret"}),
        )
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.expect("json");
    assert!(
        body["access_token"]
            .as_str()
            .expect("token")
            .starts_with("Atza|")
    );
    assert_eq!(body["refresh_token"], "Atzr|json");
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(t.admin_get("stats").await["token_exchanges"], 2);
}

async fn exchange_raw(t: &TestSim, refresh: &str, secret: &str) -> (u16, Value) {
    let resp = t
        .http
        .post(t.sim.token_url())
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("client_id", "dev-client"),
            ("client_secret", secret),
        ])
        .send()
        .await
        .expect("send");
    (resp.status().as_u16(), resp.json().await.expect("json"))
}

#[tokio::test]
async fn bad_and_revoked_refresh_tokens_are_refused() {
    let t = TestSim::start(|_| {}).await;
    let invalid_grant = json!({"error_description":
        "The request has an invalid grant parameter : refresh_token","error":"invalid_grant"});
    assert_eq!(
        exchange_raw(&t, "not-a-token", "dev-secret").await,
        (400, invalid_grant.clone())
    );
    assert_eq!(
        exchange_raw(&t, "Atzr|x", "wrong").await,
        (
            401,
            json!({"error_description":"Client authentication failed","error":"invalid_client"})
        )
    );
    let resp = t
        .http
        .post(t.sim.token_url())
        .form(&[("grant_type", "refresh_token")])
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["error"], "invalid_request");

    // Revocation: further exchanges fail and issued access tokens stop working.
    let ok = t
        .admin_post("revoke", json!({"refresh_token": crate::REFRESH}))
        .await;
    assert_eq!(ok.status(), 200);
    assert_eq!(
        exchange_raw(&t, crate::REFRESH, "dev-secret").await,
        (400, invalid_grant)
    );
    let resp = t.amc(reqwest::Method::GET, "").send().await.expect("list");
    assert_eq!(resp.status(), 401);
}
