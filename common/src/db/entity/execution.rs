//! `executions`: one run of a workflow on an AMC instance, and [`ExecutionStatus`], the
//! Rust side of its `status` column.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Status of an execution: `queued → submitting → running → fetching → succeeded`, and
/// from any non-terminal state `→ failed | cancelled`. Stored as text.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "Text")]
#[serde(rename_all = "snake_case")]
pub enum ExecutionStatus {
    #[sea_orm(string_value = "queued")]
    Queued,
    #[sea_orm(string_value = "submitting")]
    Submitting,
    #[sea_orm(string_value = "running")]
    Running,
    #[sea_orm(string_value = "fetching")]
    Fetching,
    #[sea_orm(string_value = "succeeded")]
    Succeeded,
    #[sea_orm(string_value = "failed")]
    Failed,
    #[sea_orm(string_value = "cancelled")]
    Cancelled,
}

impl ExecutionStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [ExecutionStatus; 7] = [
        Self::Queued,
        Self::Submitting,
        Self::Running,
        Self::Fetching,
        Self::Succeeded,
        Self::Failed,
        Self::Cancelled,
    ];

    /// The stored (and API) spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Submitting => "submitting",
            Self::Running => "running",
            Self::Fetching => "fetching",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    /// `succeeded`, `failed` and `cancelled` never change again.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }

    /// `submitting` and `running` hold one of AMC's slots on the instance (a fetching
    /// run has already finished at AMC). Admission counts these.
    pub fn holds_slot(self) -> bool {
        matches!(self, Self::Submitting | Self::Running)
    }
}

impl fmt::Display for ExecutionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not an execution status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown execution status {0:?}")]
pub struct UnknownExecutionStatus(pub String);

impl FromStr for ExecutionStatus {
    type Err = UnknownExecutionStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownExecutionStatus(s.to_owned()))
    }
}

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "executions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub user_id: Uuid,
    pub workflow_id: Uuid,
    pub instance_id: Uuid,
    pub status: ExecutionStatus,
    /// The rendered SQL, on one line.
    pub sql_query: String,
    #[sea_orm(column_type = "JsonBinary")]
    pub parameters: Json,
    /// AMC time window, local time in `time_zone` (no offset).
    pub time_window_start: DateTime,
    pub time_window_end: DateTime,
    pub time_zone: String,
    pub amc_execution_id: Option<String>,
    pub attempt: i32,
    pub next_check_at: Option<DateTimeUtc>,
    pub submit_started_at: Option<DateTimeUtc>,
    pub cancel_requested_at: Option<DateTimeUtc>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub result_location: Option<String>,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub result_columns: Option<Json>,
    pub row_count: Option<i64>,
    /// `api` | `schedule` | `collection`.
    pub triggered_by: String,
    pub schedule_id: Option<Uuid>,
    pub scheduled_for: Option<DateTimeUtc>,
    pub collection_id: Option<Uuid>,
    pub idempotency_key: Option<String>,
    pub request_hash: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub submitting_at: Option<DateTimeUtc>,
    pub running_at: Option<DateTimeUtc>,
    pub fetching_at: Option<DateTimeUtc>,
    /// When it reached a terminal status.
    pub completed_at: Option<DateTimeUtc>,
    /// Over the instance's daily quota: the earliest time it may start.
    pub quota_wait_until: Option<DateTimeUtc>,
    #[sea_orm(belongs_to, from = "user_id", to = "id", on_delete = "Cascade")]
    pub user: BelongsTo<super::user::Entity>,
    #[sea_orm(belongs_to, from = "workflow_id", to = "id", on_delete = "Cascade")]
    pub workflow: BelongsTo<super::workflow::Entity>,
    #[sea_orm(belongs_to, from = "instance_id", to = "id", on_delete = "Cascade")]
    pub instance: BelongsTo<super::amc_instance::Entity>,
    #[sea_orm(belongs_to, from = "schedule_id", to = "id", on_delete = "SetNull")]
    pub schedule: BelongsTo<Option<super::schedule::Entity>>,
    #[sea_orm(belongs_to, from = "collection_id", to = "id", on_delete = "SetNull")]
    pub collection: BelongsTo<Option<super::collection::Entity>>,
}

impl ActiveModelBehavior for ActiveModel {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_round_trips_through_str() {
        for st in ExecutionStatus::ALL {
            assert_eq!(st.as_str().parse::<ExecutionStatus>(), Ok(st));
            assert_eq!(st.to_string(), st.as_str());
            assert_eq!(st.to_value(), st.as_str());
        }
        assert!("QUEUED".parse::<ExecutionStatus>().is_err());
        assert!("".parse::<ExecutionStatus>().is_err());
    }

    #[test]
    fn terminal_and_slot_holding_states() {
        let terminal: Vec<_> = ExecutionStatus::ALL
            .into_iter()
            .filter(|s| s.is_terminal())
            .collect();
        assert_eq!(
            terminal,
            [
                ExecutionStatus::Succeeded,
                ExecutionStatus::Failed,
                ExecutionStatus::Cancelled
            ]
        );
        assert!(!ExecutionStatus::Queued.holds_slot());
        assert!(!ExecutionStatus::Fetching.holds_slot());
        assert!(ExecutionStatus::Running.holds_slot());
        assert!(
            ExecutionStatus::ALL
                .into_iter()
                .all(|s| !(s.is_terminal() && s.holds_slot()))
        );
    }

    #[test]
    fn serde_uses_snake_case() {
        assert_eq!(
            serde_json::to_string(&ExecutionStatus::Succeeded).ok(),
            Some("\"succeeded\"".to_owned())
        );
    }
}
