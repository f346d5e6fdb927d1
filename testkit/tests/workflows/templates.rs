//! The query template library: CRUD, public templates read and used (never changed) by
//! other users, private ones not found, filters and pages, the parameter schema checked at
//! save and on use, and workflows made from a template counting its uses.

use crate::{field, user};
use serde_json::{Value, json};
use testkit::{System, SystemOptions};

const SQL: &str = "SELECT asin, SUM(purchases) AS p FROM conversions \
    WHERE days_back = {{days}} AND brand = {{brand}} GROUP BY asin";

fn schema() -> Value {
    json!({"type": "object", "required": ["brand"], "additionalProperties": false,
           "properties": {"days": {"type": "integer", "minimum": 1, "maximum": 90, "default": 30},
                          "brand": {"type": "string", "minLength": 1}}})
}

#[tokio::test]
async fn templates_are_shared_read_only_checked_on_use_and_counted() {
    let sys = System::start(SystemOptions {
        workers: 0,
        schedulers: 0,
        ..SystemOptions::default()
    })
    .await
    .expect("system");
    let (a, _) = user(&sys, "author@example.com").await;
    let (b, b_setup) = user(&sys, "reader@example.com").await;

    let make = |name: &str, category: &str, public: bool| {
        json!({"name": name, "category": category, "tags": ["amc", category], "sql_template": SQL,
               "parameters_schema": schema(), "is_public": public})
    };
    let (s, public) = a
        .post("/query-templates", make("Top ASINs", "attribution", true))
        .await;
    assert_eq!(s, 201, "{public}");
    assert_eq!(
        (public["usage_count"].clone(), public["owned"].clone()),
        (json!(0), json!(true))
    );
    assert_eq!(public["placeholders"], json!(["days", "brand"]));
    let (s, private) = a
        .post("/query-templates", make("Mine", "audience", false))
        .await;
    assert_eq!(s, 201, "{private}");
    let (pub_id, priv_id) = (
        public["id"].as_str().unwrap(),
        private["id"].as_str().unwrap(),
    );

    // 422 naming the field: unsupported keyword, a property that is no placeholder.
    for (schema, named) in [
        (
            json!({"properties": {"days": {"type": "integer", "pattern": "^1"}}}),
            "parameters_schema.properties.days.pattern",
        ),
        (
            json!({"properties": {"zzz": {"type": "integer"}}}),
            "parameters_schema.properties.zzz",
        ),
        (json!({"type": "text"}), "parameters_schema.type"),
    ] {
        let (s, body) = a
            .post(
                "/query-templates",
                json!({"name": "bad", "sql_template": SQL, "parameters_schema": schema}),
            )
            .await;
        assert_eq!((s, field(&body)), (422, named.to_string()), "{body}");
    }
    let (s, body) = a
        .post(
            "/query-templates",
            json!({"name": "bad", "sql_template": " "}),
        )
        .await;
    assert_eq!((s, field(&body)), (422, "sql_template".into()), "{body}");

    // Lists: the author sees both, filtered and paged; the reader the public one only.
    let (s, page) = a.get("/query-templates?limit=1").await;
    assert_eq!(s, 200, "{page}");
    assert_eq!(page["items"][0]["id"], priv_id);
    let cursor = page["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_string();
    let (_, page) = a
        .get(&format!("/query-templates?limit=1&cursor={cursor}"))
        .await;
    assert_eq!(page["items"][0]["id"], pub_id);
    assert!(page["next_cursor"].is_null(), "{page}");
    let (_, page) = a.get("/query-templates?category=audience").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["items"][0]["id"], priv_id);
    let (_, page) = a.get("/query-templates?tag=attribution").await;
    assert_eq!(page["items"][0]["id"], pub_id);
    let (_, page) = b.get("/query-templates").await;
    let ids: Vec<&Value> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| &t["id"])
        .collect();
    assert_eq!(ids, [&json!(pub_id)]);
    assert_eq!(page["items"][0]["owned"], false);
    let (s, body) = b.get("/query-templates?cursor=bogus").await;
    assert_eq!((s, field(&body)), (422, "cursor".into()));

    // The reader may read and use the public one, never change or delete it; the private
    // one is not found.
    let (s, _) = b.get(&format!("/query-templates/{pub_id}")).await;
    assert_eq!(s, 200);
    for (s, body) in [
        b.get(&format!("/query-templates/{priv_id}")).await,
        b.patch(
            &format!("/query-templates/{pub_id}"),
            json!({"name": "taken"}),
        )
        .await,
        b.delete(&format!("/query-templates/{pub_id}")).await,
        b.post(
            &format!("/query-templates/{priv_id}/workflows"),
            json!({"instance_id": b_setup.instance_id, "name": "w"}),
        )
        .await,
    ] {
        assert_eq!(s, 404, "{body}");
    }

    // Use: the schema's defaults under the given values, checked; a workflow on the
    // reader's instance; the count goes up.
    let use_path = format!("/query-templates/{pub_id}/workflows");
    for (params, named) in [
        (json!({}), "parameters.brand"),
        (json!({"brand": "Acme", "days": 0}), "parameters.days"),
        (json!({"brand": "Acme", "days": "7"}), "parameters.days"),
        (json!({"brand": "Acme", "other": 1}), "parameters.other"),
    ] {
        let (s, body) = b
            .post(
                &use_path,
                json!({"instance_id": b_setup.instance_id, "name": "w", "parameters": params}),
            )
            .await;
        assert_eq!(
            (s, field(&body)),
            (422, named.to_string()),
            "{params}: {body}"
        );
    }
    let (s, body) = a
        .post(&use_path, json!({"instance_id": b_setup.instance_id, "name": "w", "parameters": {"brand": "Acme"}}))
        .await;
    assert_eq!(s, 404, "another user's instance: {body}");
    let (s, wf) = b
        .post(
            &use_path,
            json!({"instance_id": b_setup.instance_id, "name": "From the library",
            "parameters": {"brand": "Acme"}}),
        )
        .await;
    assert_eq!(s, 201, "{wf}");
    assert_eq!(wf["template_id"], pub_id);
    assert_eq!(wf["parameters"], json!({"brand": "Acme", "days": 30}));
    assert_eq!(wf["sql_query"], SQL);
    assert_eq!(wf["version"], 1);
    let (_, t) = a.get(&format!("/query-templates/{pub_id}")).await;
    assert_eq!(t["usage_count"], 1, "{t}");
    let (s, v) = b
        .post(
            &format!("/workflows/{}/validate", wf["id"].as_str().unwrap()),
            json!({}),
        )
        .await;
    assert_eq!(s, 200, "{v}");

    // The author changes and deletes their own.
    let (s, t) = a
        .patch(
            &format!("/query-templates/{pub_id}"),
            json!({"is_public": false, "category": null}),
        )
        .await;
    assert_eq!(
        (s, t["is_public"].clone(), t["category"].clone()),
        (200, json!(false), Value::Null),
        "{t}"
    );
    let (s, _) = b.get(&format!("/query-templates/{pub_id}")).await;
    assert_eq!(s, 404, "private now");
    let (s, body) = a
        .patch(
            &format!("/query-templates/{pub_id}"),
            json!({"parameters_schema": {"properties": {"nope": {}}}}),
        )
        .await;
    assert_eq!(
        (s, field(&body)),
        (422, "parameters_schema.properties.nope".into()),
        "{body}"
    );
    let (s, _) = a.delete(&format!("/query-templates/{pub_id}")).await;
    assert_eq!(s, 204);
    let (s, _) = a.get(&format!("/query-templates/{pub_id}")).await;
    assert_eq!(s, 404);
    // The workflow made from it stays.
    let (s, kept) = b
        .get(&format!("/workflows/{}", wf["id"].as_str().unwrap()))
        .await;
    assert_eq!(
        (s, kept["template_id"].clone()),
        (200, Value::Null),
        "{kept}"
    );
    sys.cleanup().await;
}
