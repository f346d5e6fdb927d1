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
    /// The advertiser / AMC account entity id (`Amazon-Advertising-API-AdvertiserId`).
    EntityId
);
string_id!(
    /// The marketplace id (`Amazon-Advertising-API-MarketplaceId`), e.g. `ATVPDKIKX0DER`.
    MarketplaceId
);

/// The Amazon Ads region of an account; picks the regional API and LWA hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Region {
    NA,
    EU,
    FE,
}

impl Region {
    /// Every region.
    pub const ALL: [Region; 3] = [Region::NA, Region::EU, Region::FE];

    pub fn as_str(self) -> &'static str {
        match self {
            Region::NA => "NA",
            Region::EU => "EU",
            Region::FE => "FE",
        }
    }

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

impl std::str::FromStr for Region {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "NA" => Ok(Region::NA),
            "EU" => Ok(Region::EU),
            "FE" => Ok(Region::FE),
            other => Err(format!("unknown region `{other}`: expected NA, EU or FE")),
        }
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
