//! Webhooks (DESIGN §7, CONTRACT § Webhooks): a user's endpoints and the delivery of the
//! events they subscribe to, signed as Standard Webhooks asks, retried on a published
//! schedule, every attempt recorded, an endpoint disabled by a published rule with its
//! later deliveries kept as `skipped`, and recoverable.
//!
//! - [`endpoint`]: the endpoints, their secrets (encrypted at rest) and rotation;
//! - [`delivery`]: every move of a delivery (claim, take, record, defer, skip, recover,
//!   test) and its log;
//! - [`sign`]: the signature; [`retry`]: the schedule; [`address`]: where a webhook may go.

pub mod address;
pub mod delivery;
pub mod endpoint;
pub mod retry;
pub mod sign;

pub use delivery::{After, Attempt, DeliveryRow, Recorded, Work};
pub use endpoint::{EndpointError, EndpointPatch, EndpointRow, EndpointSpec};
pub use retry::RetrySchedule;
pub use sign::Secret;
