//! The entities under short names: `use common::db::entity::prelude::*;`.

pub use super::amazon_connection::Entity as AmazonConnection;
pub use super::amc_account::Entity as AmcAccount;
pub use super::amc_instance::Entity as AmcInstance;
pub use super::api_key::Entity as ApiKey;
pub use super::collection::Entity as Collection;
pub use super::collection_week::Entity as CollectionWeek;
pub use super::dead_job::Entity as DeadJob;
pub use super::event::Entity as Event;
pub use super::execution::{Entity as Execution, ExecutionStatus};
pub use super::execution_transition::Entity as ExecutionTransition;
pub use super::query_template::Entity as QueryTemplate;
pub use super::refresh_token::Entity as RefreshToken;
pub use super::schedule::Entity as Schedule;
pub use super::user::Entity as User;
pub use super::webhook_delivery::Entity as WebhookDelivery;
pub use super::webhook_endpoint::Entity as WebhookEndpoint;
pub use super::worker::Entity as Worker;
pub use super::workflow::Entity as Workflow;
