//! Registration, login, `/me`, refresh rotation with reuse detection, and the 401/400
//! problem responses for bad credentials, tokens and bodies.

use crate::helpers::{PASSWORD, spawn_app};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn register_login_me_and_credential_failures() {
    let app = spawn_app().await;
    let reg = app.register("Alice@Example.COM").await;
    assert_eq!(reg.status, StatusCode::CREATED, "{}", reg.text);
    assert_eq!(reg.json["email"], "alice@example.com");

    app.register("alice@example.com").await.assert_problem(409);
    let short = app
        .request(
            "POST",
            "/api/v1/auth/register",
            None,
            Some(json!({"email": "bob@example.com", "password": "short"})),
        )
        .await;
    let p = short.assert_problem(422);
    assert_eq!(p["errors"][0]["field"], "password");
    let bad_email = app
        .request(
            "POST",
            "/api/v1/auth/register",
            None,
            Some(json!({"email": "not-an-email", "password": PASSWORD})),
        )
        .await;
    assert_eq!(bad_email.assert_problem(422)["errors"][0]["field"], "email");

    app.login("alice@example.com", "wrong password")
        .await
        .assert_problem(401);
    app.login("nobody@example.com", PASSWORD)
        .await
        .assert_problem(401);

    let login = app.login("ALICE@example.com", PASSWORD).await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.text);
    assert_eq!(login.json["token_type"], "Bearer");
    assert!(login.json["expires_in"].as_u64().unwrap_or(0) > 0);
    let token = login.json["access_token"].as_str().expect("token");
    let me = app.get("/api/v1/me", token).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text);
    assert_eq!(me.json["email"], "alice@example.com");
    assert_eq!(me.json["role"], "member");
    assert_eq!(me.json["id"], reg.json["id"]);
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_family() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let refresh = |t: &str| {
        let body = json!({ "refresh_token": t });
        let app = &app;
        async move {
            app.request("POST", "/api/v1/auth/refresh", None, Some(body))
                .await
        }
    };
    let first = refresh(&user.refresh_token).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    let second_token = first.json["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_string();
    assert_ne!(second_token, user.refresh_token);
    let access = first.json["access_token"].as_str().expect("access");
    assert_eq!(app.get("/api/v1/me", access).await.status, StatusCode::OK);

    // The old token is spent: presenting it again is reuse, which revokes the family…
    refresh(&user.refresh_token).await.assert_problem(401);
    // …so the newest token of that login stops working too.
    refresh(&second_token).await.assert_problem(401);
    refresh("never-issued").await.assert_problem(401);

    // Only hashes are stored.
    let stored = sea_orm::ConnectionTrait::query_all_raw(
        &app.db,
        sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT token_hash FROM refresh_tokens",
        ),
    )
    .await
    .expect("query");
    assert!(stored.len() >= 2);
    for row in stored {
        let hash: String = row.try_get("", "token_hash").expect("hash");
        assert_ne!(hash, user.refresh_token);
        assert_ne!(hash, second_token);
    }
}

#[tokio::test]
async fn bad_tokens_and_bodies_are_problems() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let secret = common::config::DEV_JWT_SECRET;

    let none = app.request("GET", "/api/v1/me", None, None).await;
    none.assert_problem(401);
    app.get("/api/v1/me", "not.a.jwt").await.assert_problem(401);

    let now = chrono::Utc::now().timestamp();
    let sign = |claims: serde_json::Value, key: &str| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(key.as_bytes()),
        )
        .expect("encode")
    };
    let sub = user.id.to_string();
    let expired = sign(
        json!({"sub": sub, "exp": now - 3600, "iat": now - 7200}),
        secret,
    );
    app.get("/api/v1/me", &expired).await.assert_problem(401);
    let forged = sign(
        json!({"sub": sub, "exp": now + 3600}),
        "an-attacker-secret-of-at-least-32-chars!",
    );
    app.get("/api/v1/me", &forged).await.assert_problem(401);
    let no_exp = sign(json!({"sub": sub}), secret);
    app.get("/api/v1/me", &no_exp).await.assert_problem(401);
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let claims = URL_SAFE_NO_PAD.encode(json!({"sub": sub, "exp": now + 3600}).to_string());
    let alg_none = format!("{header}.{claims}.");
    app.get("/api/v1/me", &alg_none).await.assert_problem(401);
    // The genuine token still works.
    assert_eq!(
        app.get("/api/v1/me", &user.access_token).await.status,
        StatusCode::OK
    );

    let malformed = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .header("content-type", "application/json")
        .body("{\"email\": ")
        .send()
        .await
        .expect("send");
    let malformed = crate::helpers::read(malformed).await;
    let p = malformed.assert_problem(400);
    assert!(
        p["detail"].as_str().unwrap_or("").contains("parse"),
        "{}",
        malformed.text
    );
    let missing_field = app
        .request(
            "POST",
            "/api/v1/auth/login",
            None,
            Some(json!({"email": "a@b.co"})),
        )
        .await;
    let p = missing_field.assert_problem(422);
    assert_eq!(
        p["errors"][0]["field"], "password",
        "{}",
        missing_field.text
    );
}
