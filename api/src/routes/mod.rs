//! The `/api/v1` resources, one `#[OpenApi]` impl per file, plus the operational
//! endpoints (`/healthz`, `/readyz`, `/metrics`).

pub mod accounts;
pub mod auth;
pub mod batches;
pub mod collections;
pub mod connection;
pub mod events;
pub mod executions;
pub mod health;
pub mod instances;
pub mod runs;
pub mod schedules;
pub mod templates;
pub mod webhooks;
pub mod workflows;

use poem_openapi::Tags;

/// The spec's tags, one per resource.
#[derive(Tags)]
pub enum ApiTags {
    /// Registration, login, token refresh and the current user.
    Auth,
    /// The user's Login-with-Amazon connection.
    Amazon,
    /// AMC accounts (advertiser entity, marketplace, region).
    Accounts,
    /// AMC instances and their concurrency caps.
    Instances,
    /// Saved SQL workflows with `{{placeholders}}`.
    Workflows,
    /// Runs of workflows and their results.
    Executions,
    /// Cron rules that run a workflow, their history and metrics.
    Schedules,
    /// Backfills: one workflow over every window of a historical range.
    Collections,
    /// Batch runs: one workflow over up to 100 of the user's instances.
    Batches,
    /// The user's event feed, as pages or live (Server-Sent Events).
    Events,
    /// Endpoints that receive signed events, their deliveries and attempts.
    Webhooks,
    /// The query template library: shared SQL with a JSON Schema of its parameters.
    QueryTemplates,
}
