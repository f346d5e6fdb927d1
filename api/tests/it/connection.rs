//! `PUT/GET /amazon/connection` against the in-process amc-sim's LWA endpoint.

use crate::helpers::spawn_app;
use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::json;

#[tokio::test]
async fn connection_is_exchanged_encrypted_and_reported() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let t = &user.access_token;
    app.get("/api/v1/amazon/connection", t)
        .await
        .assert_problem(404);

    let plaintext = "Atzr|secret-refresh-token-0123456789";
    let ok = app
        .request(
            "PUT",
            "/api/v1/amazon/connection",
            Some(t),
            Some(json!({ "refresh_token": plaintext })),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    assert_eq!(ok.json["status"], "active");
    assert!(
        ok.json["access_token_expires_at"].is_string(),
        "{}",
        ok.text
    );
    assert!(
        !ok.text.contains("Atzr|") && !ok.text.contains("Atza|"),
        "tokens leaked: {}",
        ok.text
    );

    let got = app.get("/api/v1/amazon/connection", t).await;
    assert_eq!(got.status, StatusCode::OK, "{}", got.text);
    assert_eq!(got.json["status"], "active");
    assert!(got.json["last_error"].is_null());

    // No plaintext token anywhere in the row (bytea columns render as hex in JSON, so
    // also look for the hex of the plaintext).
    let rows = app
        .db
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT row_to_json(c)::text AS j, encode(c.refresh_token_enc, 'escape') AS r, encode(c.access_token_enc, 'escape') AS a FROM amazon_connections c",
        ))
        .await
        .expect("dump");
    assert_eq!(rows.len(), 1);
    let hex_plain = plaintext
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect::<String>();
    for col in ["j", "r", "a"] {
        let text: String = rows[0].try_get("", col).expect("column");
        assert!(!text.contains(plaintext), "plaintext in {col}");
        assert!(!text.contains(&hex_plain), "hex plaintext in {col}");
        assert!(
            !text.contains("Atzr|") && !text.contains("Atza|"),
            "token in {col}: {text}"
        );
    }

    let bogus = app
        .request(
            "PUT",
            "/api/v1/amazon/connection",
            Some(t),
            Some(json!({ "refresh_token": "bogus" })),
        )
        .await;
    let p = bogus.assert_problem(422);
    assert!(
        p["detail"]
            .as_str()
            .unwrap_or("")
            .starts_with("The request has an invalid grant parameter : refresh_token"),
        "LWA's error_description expected verbatim: {}",
        bogus.text
    );
    // A rejected token leaves the stored connection as it was.
    assert_eq!(
        app.get("/api/v1/amazon/connection", t).await.json["status"],
        "active"
    );

    // Another user sees no connection.
    let other = app.new_user().await;
    app.get("/api/v1/amazon/connection", &other.access_token)
        .await
        .assert_problem(404);
}
