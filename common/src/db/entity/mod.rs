//! sea-orm entities, one module per table of the data model (see the `migrations` crate).

pub mod amazon_connection;
pub mod amc_account;
pub mod amc_instance;
pub mod api_key;
pub mod collection;
pub mod collection_week;
pub mod dead_job;
pub mod event;
pub mod execution;
pub mod execution_transition;
pub mod prelude;
pub mod query_template;
pub mod refresh_token;
pub mod schedule;
pub mod user;
pub mod webhook_delivery;
pub mod webhook_endpoint;
pub mod worker;
pub mod workflow;
