//! The committed `openapi.json` is what the server serves: front-end and integrator code is
//! generated from it, so a change to the API must show up as a change to that file.
//! Regenerate with `AMP_UPDATE_OPENAPI=1 cargo test -p api --test it spec`.

use crate::helpers::spawn_app;

#[tokio::test]
async fn the_committed_spec_matches_the_served_one() {
    let app = spawn_app().await;
    let served: serde_json::Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
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
