//! The events table, the outbox: every state change writes one in the transaction that
//! makes the change (DESIGN inv. 6). [`EventType`] is CONTRACT's complete list.

mod delivery;
pub mod feed;

pub use delivery::DeliveryStatus;
pub use feed::{FeedEvent, FeedPosition, FeedQuery, FeedWatcher};

use crate::execution::ExecutionStatus;
use crate::ids::{
    BatchId, CollectionId, ConnectionId, EndpointId, EventId, ExecutionId, ScheduleId, UserId,
};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement};
use serde_json::Value;

crate::text_enum! {
    /// The type of an event (CONTRACT § Webhooks, the complete list).
    pub enum EventType("event type") {
        ExecutionQueued = "execution.queued",
        ExecutionSubmitting = "execution.submitting",
        ExecutionRunning = "execution.running",
        ExecutionFetching = "execution.fetching",
        ExecutionSucceeded = "execution.succeeded",
        ExecutionFailed = "execution.failed",
        ExecutionCancelled = "execution.cancelled",
        SchedulePaused = "schedule.paused",
        CollectionCompleted = "collection.completed",
        CollectionFailed = "collection.failed",
        CollectionCancelled = "collection.cancelled",
        BatchCompleted = "batch.completed",
        ConnectionReauthRequired = "connection.reauth_required",
        WebhookEndpointDisabled = "webhook.endpoint_disabled",
        WebhookTest = "webhook.test",
    }
}

impl EventType {
    /// Whether a webhook endpoint may subscribe to it: every type but the four
    /// non-terminal `execution.*` ones (and `webhook.test`, sent to one endpoint by hand).
    pub fn is_subscribable(self) -> bool {
        !matches!(
            self,
            Self::ExecutionQueued
                | Self::ExecutionSubmitting
                | Self::ExecutionRunning
                | Self::ExecutionFetching
                | Self::WebhookTest
        )
    }

    /// The event of an execution entering `status`.
    pub fn of_execution(status: ExecutionStatus) -> Self {
        match status {
            ExecutionStatus::Queued => Self::ExecutionQueued,
            ExecutionStatus::Submitting => Self::ExecutionSubmitting,
            ExecutionStatus::Running => Self::ExecutionRunning,
            ExecutionStatus::Fetching => Self::ExecutionFetching,
            ExecutionStatus::Succeeded => Self::ExecutionSucceeded,
            ExecutionStatus::Failed => Self::ExecutionFailed,
            ExecutionStatus::Cancelled => Self::ExecutionCancelled,
        }
    }
}

macro_rules! subjects {
    ($($variant:ident($id:ty)),+ $(,)?) => {
        /// The row an event is about (its `subject_id`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Subject {
            $($variant($id),)+
        }

        $(impl From<$id> for Subject {
            fn from(id: $id) -> Self {
                Subject::$variant(id)
            }
        })+

        impl From<Subject> for sea_orm::Value {
            fn from(s: Subject) -> Self {
                match s {
                    $(Subject::$variant(id) => id.into(),)+
                }
            }
        }
    };
}

subjects!(
    Execution(ExecutionId),
    Connection(ConnectionId),
    Schedule(ScheduleId),
    Collection(CollectionId),
    Batch(BatchId),
    Endpoint(EndpointId),
);

/// One event to record.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub user: UserId,
    pub event_type: EventType,
    /// The row the event is about.
    pub subject: Subject,
    /// The subject as its own `GET` shows it.
    pub payload: Value,
}

/// Records an event in `txn` (the transaction of the change it reports).
pub async fn record<C: ConnectionTrait>(txn: &C, event: NewEvent) -> Result<(), DbErr> {
    txn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "INSERT INTO events (id, user_id, event_type, subject_id, payload) VALUES ($1, $2, $3, $4, $5)",
        [
            EventId::new().into(),
            event.user.into(),
            event.event_type.into(),
            event.subject.into(),
            event.payload.into(),
        ],
    ))
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_execution_status_has_its_event() {
        for s in ExecutionStatus::ALL {
            assert_eq!(
                EventType::of_execution(s).as_str(),
                format!("execution.{}", s.as_str())
            );
        }
    }
}
