//! The AMC reporting API and Login-with-Amazon clients (`amc-api.md`): the four AMC
//! headers, regional hosts, timeouts, and error bodies classified into typed errors
//! (rate limited, transient, auth, not yet, not found, expired URL, permanent).

mod client;
mod error;
mod lwa;
mod model;

pub use client::{AmcClient, AmcConfig, AmcTarget};
pub use error::{AmcError, ErrorClass, classify};
pub use lwa::{LwaClient, LwaError, TokenGrant};
pub use model::{AmcStatus, CreateExecution, WorkflowExecution};
