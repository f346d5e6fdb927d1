//! Identifier newtypes. Our own UUIDs and AMC's string ids are distinct types, so the
//! seeds' "instance id confusion" (passing our instance UUID where AMC's instance id
//! belongs, or the reverse) is a compile error.

use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new, time-ordered id (UUID v7).
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<Uuid> for $name {
            fn from(u: Uuid) -> Self {
                Self(u)
            }
        }

        impl From<$name> for sea_orm::Value {
            fn from(id: $name) -> Self {
                sea_orm::Value::Uuid(Some(id.0))
            }
        }

        impl sea_orm::sea_query::Nullable for $name {
            fn null() -> sea_orm::Value {
                sea_orm::Value::Uuid(None)
            }
        }

        impl sea_orm::TryGetable for $name {
            fn try_get_by<I: sea_orm::ColIdx>(
                res: &sea_orm::QueryResult,
                index: I,
            ) -> Result<Self, sea_orm::TryGetError> {
                <Uuid as sea_orm::TryGetable>::try_get_by(res, index).map(Self)
            }
        }
    };
}

uuid_id!(
    /// A user of the platform.
    UserId
);
uuid_id!(
    /// Our id of an AMC account row.
    AccountId
);
uuid_id!(
    /// Our id of an AMC instance row (not AMC's instance id: see [`AmcInstanceId`]).
    InstanceId
);
uuid_id!(
    /// A saved workflow (SQL with placeholders).
    WorkflowId
);
uuid_id!(
    /// One run of a workflow.
    ExecutionId
);
uuid_id!(
    /// A user's Amazon (LWA) connection.
    ConnectionId
);
uuid_id!(
    /// A schedule: a cron rule that runs a workflow.
    ScheduleId
);
uuid_id!(
    /// One entry of a schedule's run history.
    ScheduleRunId
);
uuid_id!(
    /// A data collection (a backfill of windows).
    CollectionId
);
uuid_id!(
    /// A batch: one workflow run over many of the user's instances.
    BatchId
);
uuid_id!(
    /// A user's webhook endpoint.
    EndpointId
);
uuid_id!(
    /// One delivery of an event to one endpoint.
    DeliveryId
);
uuid_id!(
    /// An event (a row of the outbox).
    EventId
);
uuid_id!(
    /// A query template of the library.
    TemplateId
);

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<$name> for sea_orm::Value {
            fn from(id: $name) -> Self {
                sea_orm::Value::String(Some(id.0))
            }
        }

        impl sea_orm::sea_query::Nullable for $name {
            fn null() -> sea_orm::Value {
                sea_orm::Value::String(None)
            }
        }

        impl sea_orm::TryGetable for $name {
            fn try_get_by<I: sea_orm::ColIdx>(
                res: &sea_orm::QueryResult,
                index: I,
            ) -> Result<Self, sea_orm::TryGetError> {
                <String as sea_orm::TryGetable>::try_get_by(res, index).map(Self)
            }
        }
    };
}

string_id!(
    /// AMC's own instance id string (e.g. `amchashpvdx`), part of every reporting path.
    AmcInstanceId
);
string_id!(
    /// AMC's workflow execution id (a UUID string chosen by AMC).
    AmcExecutionId
);
string_id!(
    /// A saved workflow's id at AMC (`workflowId`): letters, digits, `.`, `-` and `_`.
    AmcWorkflowId
);
string_id!(
    /// The advertiser / AMC account entity id (`Amazon-Advertising-API-AdvertiserId`).
    EntityId
);
string_id!(
    /// The marketplace id (`Amazon-Advertising-API-MarketplaceId`), e.g. `ATVPDKIKX0DER`.
    MarketplaceId
);

crate::text_enum! {
    /// The Amazon Ads region of an account; picks the regional API and LWA hosts.
    pub enum Region("region") {
        NA = "NA",
        EU = "EU",
        FE = "FE",
    }
}

impl Region {
    /// Amazon's Ads API host for this region.
    pub fn ads_api_base(self) -> &'static str {
        match self {
            Region::NA => "https://advertising-api.amazon.com",
            Region::EU => "https://advertising-api-eu.amazon.com",
            Region::FE => "https://advertising-api-fe.amazon.com",
        }
    }

    /// Login with Amazon's token endpoint for this region.
    pub fn lwa_token_url(self) -> &'static str {
        match self {
            Region::NA => "https://api.amazon.com/auth/o2/token",
            Region::EU => "https://api.amazon.co.uk/auth/o2/token",
            Region::FE => "https://api.amazon.co.jp/auth/o2/token",
        }
    }
}
