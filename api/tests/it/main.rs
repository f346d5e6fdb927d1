//! The API's integration tests: one binary, each test with its own database, Redis
//! prefix, in-process amc-sim and API server on port 0.

mod auth;
mod connection;
mod executions;
mod helpers;
mod hostile;
mod ops;
mod resources;
mod spec;
