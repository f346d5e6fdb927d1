//! Workflows against the real binaries, Postgres, Redis and amc-sim: versions made by
//! edits and read back, runs of a named version, the default window, validate, tags,
//! delete refused while in use, and collections pinning the version they started with
//! while schedules follow the latest (unless pinned); the query template library; batch
//! runs over many instances.
//! Run `cargo build --workspace --bins` first (`ops/test` does).

mod api;
mod batches;
mod pinning;
mod templates;

use serde_json::{Value, json};
use testkit::{Client, System};

/// Version 1 of the test workflow.
pub const SQL_V1: &str = "SELECT campaign, 1 AS v FROM dsp_impressions WHERE tag = '{{tag}}'";
/// Version 2 (an edit of the SQL).
pub const SQL_V2: &str = "SELECT campaign, 2 AS v FROM dsp_impressions WHERE tag = '{{tag}}'";

/// A logged-in user with a connection, an account, an instance (cap 20) and the workflow.
pub async fn user(sys: &System, email: &str) -> (Client, testkit::system::FirstRun) {
    let mut c = sys.client();
    c.register_and_login(email).await;
    let setup = c
        .first_run_setup("amcinst01", 20, SQL_V1, json!({"tag": "none"}))
        .await;
    (c, setup)
}

/// The field a 422 names.
pub fn field(b: &Value) -> String {
    b["errors"][0]["field"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}
