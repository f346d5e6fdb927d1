//! Hostile and odd input: each case a fuzzer or an attacker found is answered 422 naming
//! the field, or 401, never 500; HTTP-level errors are problem+json too.

use crate::helpers::{PASSWORD, TestApp, TestResponse, spawn_app, spawn_app_with};
use reqwest::StatusCode;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Asserts a 422 whose `errors` name `field`.
fn assert_field(r: &TestResponse, field: &str) {
    let p = r.assert_problem(422);
    assert_eq!(p["errors"][0]["field"], field, "{}", r.text);
}

async fn account(app: &TestApp, token: &str, body: Value) -> TestResponse {
    app.post("/api/v1/accounts", token, body).await
}

fn account_body() -> Value {
    json!({"name": "Brand", "entity_id": "ENTITY1", "marketplace_id": "ATVPDKIKX0DER", "region": "NA"})
}

fn with(mut body: Value, field: &str, value: Value) -> Value {
    body[field] = value;
    body
}

#[tokio::test]
async fn nul_and_control_characters_are_named_not_stored() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let t = &user.access_token;
    for (field, value) in [
        ("name", json!("a\u{0}b")),
        ("entity_id", json!("E\u{0}1")),
        ("marketplace_id", json!("\u{0}")),
        ("name", json!("Brand\u{1b}[31m")),
        ("name", json!("abc\u{202E}fed")),
        ("name", json!("\u{200B}\u{200D}\u{FEFF}")),
        ("name", json!("   ")),
        ("name", json!(42)),
        ("region", json!("XX")),
        ("max_concurrent_executions", json!(0)),
        ("max_concurrent_executions", json!("ten")),
    ] {
        let r = account(&app, t, with(account_body(), field, value.clone())).await;
        assert_field(&r, field);
    }
    // A name in decomposed form is stored normalised (NFC).
    let r = account(&app, t, with(account_body(), "name", json!("Cafe\u{301}"))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.json["name"], "Caf\u{e9}");

    let (_, instance, workflow) = app
        .create_workflow(&user, "SELECT {{x}}", json!({"x": 1}))
        .await;
    let wf = |body: Value| app.post("/api/v1/workflows", t, body);
    let base = json!({"name": "wf", "instance_id": instance, "sql_query": "SELECT {{x}}"});
    assert_field(
        &wf(with(base.clone(), "sql_query", json!("SELECT 1\u{0}"))).await,
        "sql_query",
    );
    assert_field(
        &wf(with(base.clone(), "description", json!("d\u{0}"))).await,
        "description",
    );
    assert_field(
        &wf(with(base.clone(), "description", json!("x".repeat(2001)))).await,
        "description",
    );
    assert_field(
        &wf(with(
            base.clone(),
            "parameters",
            json!({"x": {"deep": ["a\u{0}"]}}),
        ))
        .await,
        "parameters",
    );
    assert_field(
        &wf(with(base.clone(), "parameters", json!({"x\u{0}": 1}))).await,
        "parameters",
    );
    assert_field(
        &wf(with(base.clone(), "instance_id", json!("nope"))).await,
        "instance_id",
    );

    let path = format!("/api/v1/workflows/{workflow}/executions");
    let run = |params: Value| {
        app.post(
            &path,
            t,
            json!({"parameters": params, "time_window": {"start": "2026-01-01T00:00:00", "end": "2026-01-08T00:00:00"}}),
        )
    };
    assert_field(&run(json!({"x": "a\u{0}"})).await, "parameters");
    assert_field(&run(json!({"x\u{0}": 1})).await, "parameters");

    let reg = app
        .request(
            "POST",
            "/api/v1/auth/register",
            None,
            Some(json!({"email": "a\u{0}@example.com", "password": PASSWORD})),
        )
        .await;
    assert_field(&reg, "email");
    let reg = app
        .request(
            "POST",
            "/api/v1/auth/register",
            None,
            Some(json!({"email": "numbers@example.com", "password": 123456789})),
        )
        .await;
    assert_field(&reg, "password");
    // Nothing of it was stored.
    let n = app
        .db
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT (SELECT count(*) FROM amc_accounts) + (SELECT count(*) FROM workflows) AS n",
        ))
        .await
        .expect("count")
        .expect("row")
        .try_get::<i64>("", "n")
        .expect("n");
    assert_eq!(
        n, 3,
        "one account and one workflow from the set-up, one NFC account"
    );
}

#[tokio::test]
async fn time_windows_outside_what_amc_and_postgres_hold_are_named() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let (_, _, workflow) = app.create_workflow(&user, "SELECT 1", json!({})).await;
    let path = format!("/api/v1/workflows/{workflow}/executions");
    let run = |start: &str, end: &str, zone: &str| {
        app.post(
            &path,
            &user.access_token,
            json!({"time_window": {"start": start, "end": end, "time_zone": zone}}),
        )
    };
    let end = "2026-07-08T00:00:00";
    for start in [
        "2026-06-30T23:59:60",
        "-5000-01-01T00:00:00",
        "0000-01-01T00:00:00",
        "+10000-01-01T00:00:00",
    ] {
        assert_field(&run(start, end, "UTC").await, "time_window.start");
    }
    // Spring forward in New York: 02:30 does not exist that day.
    assert_field(
        &run(
            "2026-03-08T02:30:00",
            "2026-03-09T00:00:00",
            "America/New_York",
        )
        .await,
        "time_window.start",
    );
    assert_field(
        &run("2026-01-01T00:00:00", end, "Mars/Olympus").await,
        "time_window.time_zone",
    );
    let r = app
        .post(
            &format!("/api/v1/workflows/{workflow}/executions"),
            &user.access_token,
            json!({"time_window": "last week"}),
        )
        .await;
    assert_field(&r, "time_window");
    // A good window still runs.
    let ok = run("2026-01-01T00:00:00", end, "UTC").await;
    assert_eq!(ok.status, StatusCode::ACCEPTED, "{}", ok.text);
}

#[tokio::test]
async fn tokens_of_missing_or_deleted_users_are_refused_everywhere() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let t = &user.access_token;
    // A token signed with the right key for a user that never existed.
    let ghost = app
        .state
        .jwt
        .issue(
            common::ids::UserId::new(),
            common::repo::users::Role::Member,
            0,
        )
        .expect("issue");
    app.get("/api/v1/accounts", &ghost)
        .await
        .assert_problem(401);
    account(&app, &ghost, account_body())
        .await
        .assert_problem(401);
    app.get("/api/v1/me", &ghost).await.assert_problem(401);

    // The real user's token works, and is cached after this.
    assert_eq!(app.get("/api/v1/accounts", t).await.status, StatusCode::OK);
    let gate = app.state.users.clone();
    assert!(
        crate::helpers::wait_until(std::time::Duration::from_secs(5), || {
            let g = gate.clone();
            async move { g.is_listening() }
        })
        .await
    );
    assert_eq!(app.get("/api/v1/me", t).await.status, StatusCode::OK);
    // Its token version moves on (a "log out everywhere"): refused at once.
    app.db
        .execute_unprepared("UPDATE users SET token_version = token_version + 1")
        .await
        .expect("bump");
    assert!(
        refused_soon(&app, t).await,
        "a bumped token version is refused"
    );

    let other = app.new_user().await;
    assert_eq!(
        app.get("/api/v1/me", &other.access_token).await.status,
        StatusCode::OK
    );
    app.db
        .execute_unprepared(&format!("DELETE FROM users WHERE id = '{}'", other.id))
        .await
        .expect("delete");
    assert!(
        refused_soon(&app, &other.access_token).await,
        "a deleted user's token is refused"
    );
    let r = account(&app, &other.access_token, account_body()).await;
    r.assert_problem(401);
    assert!(
        !r.text.to_lowercase().contains("jsonwebtoken") && !r.text.contains("InvalidToken"),
        "{}",
        r.text
    );
}

/// True once `token` gets 401 on `GET /me` (within 2 s: a NOTIFY away).
async fn refused_soon(app: &TestApp, token: &str) -> bool {
    crate::helpers::wait_until(std::time::Duration::from_secs(2), || async {
        app.get("/api/v1/me", token).await.status == StatusCode::UNAUTHORIZED
    })
    .await
}

#[tokio::test]
async fn http_errors_are_problems_with_allow_on_405() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let r = app
        .request("DELETE", "/api/v1/accounts", Some(&user.access_token), None)
        .await;
    r.assert_problem(405);
    assert_eq!(
        r.headers.get("allow").and_then(|v| v.to_str().ok()),
        Some("GET, POST")
    );
    let r = app
        .get("/api/v1/executions/not-a-uuid", &user.access_token)
        .await;
    assert_field(&r, "id");
    let r = app
        .get(
            "/api/v1/executions/00000000-0000-7000-8000-000000000000/results?limit=0",
            &user.access_token,
        )
        .await;
    assert_field(&r, "limit");
    let r = app.request("PUT", "/healthz", None, None).await;
    r.assert_problem(405);
    assert_eq!(
        r.headers.get("allow").and_then(|v| v.to_str().ok()),
        Some("GET")
    );

    let text = app
        .client
        .post(app.url("/api/v1/accounts"))
        .bearer_auth(&user.access_token)
        .header("content-type", "text/plain")
        .body("name=x")
        .send()
        .await
        .expect("send");
    crate::helpers::read(text).await.assert_problem(415);
    let big = app
        .client
        .post(app.url("/api/v1/accounts"))
        .bearer_auth(&user.access_token)
        .header("content-type", "application/json")
        .body(vec![b' '; 2 * 1024 * 1024])
        .send()
        .await
        .expect("send");
    crate::helpers::read(big).await.assert_problem(413);

    // Below poem: hyper's own refusals.
    let bad_header = raw(
        &app,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Bad: a\x01b\r\n\r\n",
    )
    .await;
    assert_raw_problem(&bad_header, 400);
    let long = format!(
        "GET /{} HTTP/1.1\r\nHost: x\r\n\r\n",
        "a".repeat(100 * 1024)
    );
    assert_raw_problem(&raw(&app, long.as_bytes()).await, 414);
}

/// Sends raw bytes and reads the answer until the server closes.
async fn raw(app: &TestApp, request: &[u8]) -> String {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", app.port))
        .await
        .expect("connect");
    let _ = s.write_all(request).await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

fn assert_raw_problem(answer: &str, status: u16) {
    assert!(
        answer.starts_with(&format!("HTTP/1.1 {status} ")),
        "{answer}"
    );
    assert!(answer.contains("application/problem+json"), "{answer}");
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or("");
    let v: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("{answer}"));
    assert_eq!(v["status"], status);
}

#[tokio::test]
async fn login_attempts_are_limited_per_ip_and_per_email() {
    let app = spawn_app_with(|v| {
        v.insert("AMP_LOGIN_RATE_LIMIT_IP".into(), "8/1m".into());
        v.insert("AMP_LOGIN_RATE_LIMIT_EMAIL".into(), "3/1m".into());
    })
    .await;
    app.register("victim@example.com").await;
    for _ in 0..3 {
        app.login("victim@example.com", "wrong password")
            .await
            .assert_problem(401);
    }
    // The email is locked now, even for the right password; other emails are not.
    let r = app.login("victim@example.com", PASSWORD).await;
    r.assert_problem(429);
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=61).contains(&retry), "{retry}");
    app.login("nobody@example.com", "wrong password")
        .await
        .assert_problem(401);
    // Four more from this IP go over its limit of 8, whatever the email.
    let mut statuses = Vec::new();
    for i in 0..4 {
        statuses.push(
            app.login(&format!("x{i}@example.com"), "pw")
                .await
                .status
                .as_u16(),
        );
    }
    assert_eq!(statuses, [401, 401, 401, 429]);
    // Counters live in Redis under this deployment's prefix, shared by every replica.
    let client = redis::Client::open("redis://127.0.0.1:6379").expect("redis");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}:rl:*", app.redis_prefix))
        .query_async(&mut conn)
        .await
        .expect("keys");
    assert!(keys.iter().all(|k| !k.contains("example.com")), "{keys:?}");
    assert!(!keys.is_empty());
}
