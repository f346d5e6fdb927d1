//! Shared library of every RecomAMP Engine process: configuration, telemetry, database
//! entities and queries, domain types and state machines, job payloads, the AMC + LWA
//! client, crypto and SQL parameter rendering.

pub mod amc;
pub mod batch;
pub mod coalesce;
pub mod collection;
pub mod config;
pub mod connection;
pub mod crypto;
pub mod cursor;
pub mod db;
pub mod event;
pub mod execution;
pub mod fleet;
pub mod group;
pub mod ids;
pub mod jobs;
pub mod keys;
pub mod prune;
pub mod readiness;
pub mod reconcile;
pub mod repo;
pub mod result_retention;
pub mod result_types;
pub mod results;
pub mod saved_workflow;
pub mod schedule;
pub mod shutdown;
pub mod sql;
pub mod telemetry;
pub mod template;
pub mod text;
pub mod time_window;
pub mod webhook;
pub mod workflow;

/// poem-openapi, for the spec impls [`text_enum!`] generates with the `openapi` feature.
#[cfg(feature = "openapi")]
#[doc(hidden)]
pub use poem_openapi as __openapi;
