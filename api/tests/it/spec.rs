//! The committed `openapi.json` is what the server serves: front-end and integrator code is
//! generated from it, so a change to the API must show up as a change to that file.
//! Regenerate with `AMP_UPDATE_OPENAPI=1 cargo test -p api --test it spec`.

use crate::helpers::spawn_app;

/// The spec a freshly started server serves.
async fn served_spec() -> serde_json::Value {
    let app = spawn_app().await;
    app.client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json")
}

#[tokio::test]
async fn the_committed_spec_matches_the_served_one() {
    let served = served_spec().await;
    let pretty = serde_json::to_string_pretty(&served).expect("pretty") + "\n";
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../openapi.json");
    if std::env::var_os("AMP_UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &pretty).expect("write openapi.json");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == pretty,
        "openapi.json is out of date: regenerate it with AMP_UPDATE_OPENAPI=1 cargo test -p api --test it spec"
    );
}

/// What the server does beyond each operation's own answers is in the spec: the
/// `Retry-After` of a login's or registration's 429, and the 405 with `Allow` that any
/// path gives for a method it does not serve.
#[tokio::test]
async fn the_spec_states_retry_after_and_405() {
    let spec = served_spec().await;
    for path in ["/auth/login", "/auth/register"] {
        let header = &spec["paths"][path]["post"]["responses"]["429"]["headers"]["Retry-After"];
        assert_eq!(header["required"], true, "{path}: {header}");
        assert_eq!(header["schema"]["type"], "integer", "{path}: {header}");
    }
    let description = spec["info"]["description"].as_str().unwrap_or_default();
    assert!(
        description.contains("405") && description.contains("`Allow`"),
        "{description}"
    );
}
