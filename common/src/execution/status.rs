//! Execution status and origin enums, stored as text.

use serde::{Deserialize, Serialize};

/// The execution status (stored as text; defined with the entity).
pub use crate::db::entity::execution::ExecutionStatus as Status;

impl Status {
    pub const NON_TERMINAL: [Status; 4] = [
        Status::Queued,
        Status::Submitting,
        Status::Running,
        Status::Fetching,
    ];

    /// The column that records when a run entered this state.
    pub(crate) fn timestamp_column(self) -> &'static str {
        match self {
            Status::Queued => "created_at",
            Status::Submitting => "submitting_at",
            Status::Running => "running_at",
            Status::Fetching => "fetching_at",
            Status::Succeeded | Status::Failed | Status::Cancelled => "completed_at",
        }
    }

    /// Whether the state machine allows `self → to`.
    pub fn can_move_to(self, to: Status) -> bool {
        use Status::*;
        match (self, to) {
            (s, _) if s.is_terminal() => false,
            (_, Failed | Cancelled) => true,
            (Queued, Submitting)
            | (Submitting, Running)
            | (Running, Fetching)
            | (Fetching, Succeeded) => true,
            _ => false,
        }
    }
}

/// What created an execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TriggeredBy {
    Api,
    Schedule,
    Collection,
}

impl TriggeredBy {
    pub fn as_str(self) -> &'static str {
        match self {
            TriggeredBy::Api => "api",
            TriggeredBy::Schedule => "schedule",
            TriggeredBy::Collection => "collection",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_states_never_move() {
        for from in [Status::Succeeded, Status::Failed, Status::Cancelled] {
            for to in Status::ALL {
                assert!(!from.can_move_to(to), "{from} -> {to}");
            }
        }
    }

    #[test]
    fn the_happy_path_and_the_exits() {
        use Status::*;
        assert!(Queued.can_move_to(Submitting));
        assert!(Submitting.can_move_to(Running));
        assert!(Running.can_move_to(Fetching));
        assert!(Fetching.can_move_to(Succeeded));
        assert!(!Queued.can_move_to(Running));
        assert!(!Running.can_move_to(Succeeded));
        for s in Status::NON_TERMINAL {
            assert!(s.can_move_to(Failed) && s.can_move_to(Cancelled));
        }
    }

    #[test]
    fn round_trips_through_text() {
        for s in Status::ALL {
            assert_eq!(s.as_str().parse::<Status>().unwrap(), s);
        }
        assert!("done".parse::<Status>().is_err());
    }
}
