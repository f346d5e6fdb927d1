//! Health, readiness, metrics, the spec, Swagger UI, security headers, routing errors
//! and the body size limit.

use crate::helpers::{read, spawn_app};
use reqwest::StatusCode;

#[tokio::test]
async fn operational_endpoints_answer() {
    let app = spawn_app().await;
    let health = read(
        app.client
            .get(app.url("/healthz"))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.json["status"], "ok");
    assert_eq!(health.headers["x-content-type-options"], "nosniff");
    assert_eq!(health.headers["x-frame-options"], "DENY");
    assert_eq!(health.headers["referrer-policy"], "no-referrer");
    assert!(health.headers.get("strict-transport-security").is_none());

    let ready = read(
        app.client
            .get(app.url("/readyz"))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.text);
    assert_eq!(
        read(
            app.client
                .get(app.url("/api/v1/healthz"))
                .send()
                .await
                .expect("send")
        )
        .await
        .status,
        StatusCode::OK
    );

    let spec = read(
        app.client
            .get(app.url("/openapi.json"))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(spec.status, StatusCode::OK);
    let paths = spec.json["paths"].as_object().expect("paths");
    for p in [
        "/auth/register",
        "/auth/login",
        "/auth/refresh",
        "/me",
        "/amazon/connection",
        "/accounts",
        "/instances/{id}",
        "/workflows/{id}",
    ] {
        assert!(paths.contains_key(p), "spec lacks {p}");
    }
    assert!(spec.json["components"]["securitySchemes"]["BearerAuth"].is_object());
    let docs = read(app.client.get(app.url("/docs")).send().await.expect("send")).await;
    assert_eq!(docs.status, StatusCode::OK);
    assert!(docs.text.contains("swagger"));

    // Routing and size failures are problems too.
    read(
        app.client
            .get(app.url("/api/v1/nope"))
            .send()
            .await
            .expect("send"),
    )
    .await
    .assert_problem(404);
    read(
        app.client
            .delete(app.url("/api/v1/auth/login"))
            .send()
            .await
            .expect("send"),
    )
    .await
    .assert_problem(405);
    let big = "x".repeat(2 * 1024 * 1024);
    let too_big = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .expect("send");
    read(too_big).await.assert_problem(413);

    let metrics = read(
        app.client
            .get(app.url("/metrics"))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(metrics.status, StatusCode::OK);
    // Labelled by route template, not raw path: the unknown path counts as `unmatched`.
    assert!(
        metrics
            .text
            .contains("http_requests_total{method=\"GET\",route=\"/openapi.json\",status=\"200\"}"),
        "{}",
        metrics.text
    );
    assert!(
        metrics
            .text
            .contains("http_requests_total{method=\"GET\",route=\"unmatched\",status=\"404\"} 1"),
        "{}",
        metrics.text
    );
    assert!(
        metrics.text.contains(
            "http_request_duration_seconds_bucket{le=\"+Inf\",method=\"GET\",route=\"/openapi.json\"}"
        ) || metrics.text.contains(
            "http_request_duration_seconds_bucket{method=\"GET\",route=\"/openapi.json\",le=\"+Inf\"}"
        ),
        "{}",
        metrics.text
    );
    assert!(metrics.text.contains("http_request_duration_seconds_count"));
}

#[tokio::test]
async fn readyz_names_redis_when_it_is_down() {
    // A private Redis, stopped while the API runs.
    let port = free_port();
    let mut server = std::process::Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start redis-server");
    let url = format!("redis://127.0.0.1:{port}");
    wait_for_port(port).await;
    let app = crate::helpers::spawn_app_with(|v| {
        v.insert("AMP_REDIS_URL".into(), url.clone());
    })
    .await;
    let ready = read(
        app.client
            .get(app.url("/readyz"))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.text);
    let _ = server.kill();
    let _ = server.wait();
    let down = read(
        app.client
            .get(app.url("/readyz"))
            .send()
            .await
            .expect("send"),
    )
    .await;
    let p = down.assert_problem(503);
    assert!(
        p["detail"].as_str().unwrap_or("").contains("redis"),
        "{}",
        down.text
    );
    assert!(
        !p["detail"].as_str().unwrap_or("").contains("postgres"),
        "{}",
        down.text
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

async fn wait_for_port(port: u16) {
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("redis-server did not start on {port}");
}
