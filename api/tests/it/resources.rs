//! Accounts, instances and workflows: create, list, get, patch, validation and tenancy.

use crate::helpers::{id_of, spawn_app};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn accounts_instances_workflows_crud_and_tenancy() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let t = &user.access_token;

    // Accounts.
    let bad_region = app
        .post(
            "/api/v1/accounts",
            t,
            json!({"name": "A", "entity_id": "E1", "marketplace_id": "M1", "region": "MARS"}),
        )
        .await;
    assert_eq!(
        bad_region.assert_problem(422)["errors"][0]["field"],
        "region"
    );
    let acc = app
        .post(
            "/api/v1/accounts",
            t,
            json!({"name": "A", "entity_id": "E1", "marketplace_id": "M1", "region": "EU"}),
        )
        .await;
    assert_eq!(acc.status, StatusCode::CREATED, "{}", acc.text);
    assert_eq!(acc.json["region"], "EU");
    assert_eq!(acc.json["max_concurrent_executions"], 200);
    let account_id = id_of(&acc);
    app.post(
        "/api/v1/accounts",
        t,
        json!({"name": "A2", "entity_id": "E1", "marketplace_id": "M1", "region": "EU"}),
    )
    .await
    .assert_problem(409);
    let list = app.get("/api/v1/accounts", t).await;
    assert_eq!(list.json["items"].as_array().map(Vec::len), Some(1));
    assert!(list.json["next_cursor"].is_null());
    assert_eq!(
        app.get(&format!("/api/v1/accounts/{account_id}"), t)
            .await
            .json["name"],
        "A"
    );

    // Instances.
    let inst = app
        .post(
            "/api/v1/instances",
            t,
            json!({"name": "I", "account_id": account_id, "amc_instance_id": "amc1", "daily_execution_quota": 5, "time_zone": "Europe/Berlin"}),
        )
        .await;
    assert_eq!(inst.status, StatusCode::CREATED, "{}", inst.text);
    assert_eq!(inst.json["max_concurrent_executions"], 10);
    assert_eq!(inst.json["daily_execution_quota"], 5);
    assert_eq!(inst.json["time_zone"], "Europe/Berlin");
    let instance_id = id_of(&inst);
    let bad_tz = app
        .post("/api/v1/instances", t, json!({"name": "I", "account_id": account_id, "amc_instance_id": "amc2", "time_zone": "Mars/Base"}))
        .await;
    assert_eq!(
        bad_tz.assert_problem(422)["errors"][0]["field"],
        "time_zone"
    );
    let patched = app
        .request(
            "PATCH",
            &format!("/api/v1/instances/{instance_id}"),
            Some(t),
            Some(json!({"max_concurrent_executions": 3, "daily_execution_quota": null})),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    assert_eq!(patched.json["max_concurrent_executions"], 3);
    assert!(patched.json["daily_execution_quota"].is_null());
    assert_eq!(patched.json["time_zone"], "Europe/Berlin");
    assert_eq!(
        app.get("/api/v1/instances", t).await.json["items"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );

    // Workflows.
    let sql = "SELECT campaign, SUM(impressions) FROM sponsored_ads_traffic WHERE campaign = {{campaign}} AND x > {{ min }} GROUP BY 1";
    let unknown = app
        .post("/api/v1/workflows", t, json!({"name": "W", "instance_id": instance_id, "sql_query": sql, "parameters": {"nope": 1}}))
        .await;
    assert_eq!(
        unknown.assert_problem(422)["errors"][0]["field"],
        "parameters.nope"
    );
    let wf = app
        .post(
            "/api/v1/workflows",
            t,
            json!({"name": "W", "instance_id": instance_id, "sql_query": sql, "parameters": {"min": 3}, "description": "d"}),
        )
        .await;
    assert_eq!(wf.status, StatusCode::CREATED, "{}", wf.text);
    assert_eq!(wf.json["placeholders"], json!(["campaign", "min"]));
    assert_eq!(wf.json["parameters"], json!({"min": 3}));
    let workflow_id = id_of(&wf);
    let got = app
        .get(&format!("/api/v1/workflows/{workflow_id}"), t)
        .await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.json["sql_query"], sql);
    assert_eq!(
        app.get("/api/v1/workflows", t).await.json["items"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );

    // Another user sees none of it and cannot build on it.
    let other = app.new_user().await;
    let o = &other.access_token;
    app.get(&format!("/api/v1/workflows/{workflow_id}"), o)
        .await
        .assert_problem(404);
    app.get(&format!("/api/v1/instances/{instance_id}"), o)
        .await
        .assert_problem(404);
    app.get(&format!("/api/v1/accounts/{account_id}"), o)
        .await
        .assert_problem(404);
    assert_eq!(
        app.get("/api/v1/workflows", o).await.json,
        json!({"items": [], "next_cursor": null})
    );
    app.post(
        "/api/v1/instances",
        o,
        json!({"name": "I", "account_id": account_id, "amc_instance_id": "amc9"}),
    )
    .await
    .assert_problem(404);
    app.post(
        "/api/v1/workflows",
        o,
        json!({"name": "W", "instance_id": instance_id, "sql_query": "SELECT 1"}),
    )
    .await
    .assert_problem(404);
    app.request(
        "PATCH",
        &format!("/api/v1/instances/{instance_id}"),
        Some(o),
        Some(json!({"max_concurrent_executions": 1})),
    )
    .await
    .assert_problem(404);
    app.get(&format!("/api/v1/workflows/{}", uuid::Uuid::new_v4()), t)
        .await
        .assert_problem(404);
    let bad = app.get("/api/v1/workflows/not-a-uuid", t).await;
    assert_eq!(bad.assert_problem(422)["errors"][0]["field"], "id");
}

#[tokio::test]
async fn accounts_instances_and_workflows_are_listed_a_page_at_a_time() {
    let app = spawn_app().await;
    let user = app.new_user().await;
    let t = &user.access_token;
    let mut created = Vec::new();
    for n in 0..5 {
        let acc = app
            .post(
                "/api/v1/accounts",
                t,
                json!({"name": "A", "entity_id": format!("E{n}"), "marketplace_id": "M1", "region": "NA"}),
            )
            .await;
        assert_eq!(acc.status, StatusCode::CREATED, "{}", acc.text);
        created.push(id_of(&acc).to_string());
    }
    // Newest first, two at a time, each once.
    let mut seen = Vec::new();
    let mut path = "/api/v1/accounts?limit=2".to_string();
    loop {
        let page = app.get(&path, t).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text);
        let items = page.json["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|a| a["id"].as_str().unwrap().to_string()));
        match page.json["next_cursor"].as_str() {
            Some(c) => path = format!("/api/v1/accounts?limit=2&cursor={c}"),
            None => break,
        }
    }
    created.reverse();
    assert_eq!(seen, created);

    // Bad page parameters name themselves; a cursor of another list opens nothing here.
    for list in ["accounts", "instances", "workflows"] {
        for (query, field) in [
            ("limit=0", "limit"),
            ("limit=501", "limit"),
            ("cursor=xyz", "cursor"),
        ] {
            let r = app.get(&format!("/api/v1/{list}?{query}"), t).await;
            assert_eq!(
                r.assert_problem(422)["errors"][0]["field"],
                field,
                "{list}?{query}"
            );
        }
    }
    let first = app.get("/api/v1/accounts?limit=1", t).await;
    let cursor = first.json["next_cursor"].as_str().unwrap();
    let r = app
        .get(&format!("/api/v1/workflows?cursor={cursor}"), t)
        .await;
    assert_eq!(r.assert_problem(422)["errors"][0]["field"], "cursor");
    // Another user's list is empty.
    let other = app.new_user().await;
    let r = app.get("/api/v1/accounts", &other.access_token).await;
    assert_eq!(r.json, json!({"items": [], "next_cursor": null}));
}
