//! The migrations, oldest first.

pub mod m20260101_000001_initial;
pub mod m20261130_000001_execution_keys;
pub mod m20261201_000001_user_tokens;
pub mod m20261202_000001_schedules;
pub mod m20261207_000001_collections;
pub mod m20261208_000001_webhooks;
pub mod m20261209_000001_telemetry;
pub mod m20261210_000001_execution_lists;
pub mod m20261211_000001_workflow_versions;
pub mod m20261211_000002_query_templates;
pub mod m20261212_000001_result_types;
pub mod m20261213_000001_saved_workflows;
pub mod m20261214_000001_batches;
pub mod m20261215_000001_collection_attempts;
