//! Execution status, origin and error codes: enums stored as text.

crate::text_enum! {
    /// Status of an execution: `queued → submitting → running → fetching → succeeded`,
    /// and from any non-terminal state `→ failed | cancelled`.
    pub enum ExecutionStatus("execution status") {
        Queued = "queued",
        Submitting = "submitting",
        Running = "running",
        Fetching = "fetching",
        Succeeded = "succeeded",
        Failed = "failed",
        Cancelled = "cancelled",
    }
}

/// The status under its short name.
pub use ExecutionStatus as Status;

crate::text_enum! {
    /// What created an execution.
    pub enum TriggeredBy("trigger") {
        Api = "api",
        Schedule = "schedule",
        Collection = "collection",
        /// One instance's run of a batch (`POST /batches`).
        Batch = "batch",
    }
}

crate::text_enum! {
    /// Why a run failed or stopped: the `error.code` clients see, beside AMC's or LWA's
    /// words in `error.message`.
    pub enum ErrorCode("error code") {
        /// AMC refused the run or the request (a bad query, a permission): its words.
        AmcError = "amc_error",
        /// AMC ran the query and reported it FAILED: its `statusReason`.
        AmcFailed = "amc_failed",
        /// AMC (or LWA) kept failing transiently until the attempts ran out.
        AmcUnavailable = "amc_unavailable",
        /// The owner has no Amazon connection.
        NoConnection = "no_connection",
        /// LWA refused the connection's refresh token.
        ReauthRequired = "reauth_required",
        /// A state this code never writes (a run marked running without an AMC id).
        Internal = "internal",
    }
}

impl Status {
    /// `succeeded`, `failed` and `cancelled` never change again.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }

    /// `submitting` and `running` hold one of AMC's slots on the instance (a fetching
    /// run has already finished at AMC). Admission counts these.
    pub fn holds_slot(self) -> bool {
        matches!(self, Self::Submitting | Self::Running)
    }

    /// The terminal states as an SQL list, for queries outside this module
    /// (`status NOT IN {ENDED_SQL}`).
    pub const ENDED_SQL: &'static str = "('succeeded', 'failed', 'cancelled')";
    /// The states of a run at (or on its way to) AMC, as an SQL list.
    pub const AT_AMC_SQL: &'static str = "('submitting', 'running', 'fetching')";

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sql_lists_hold_their_states() {
        let list = |pred: fn(Status) -> bool| {
            let names: Vec<String> = Status::ALL
                .iter()
                .filter(|s| pred(**s))
                .map(|s| format!("'{s}'"))
                .collect();
            format!("({})", names.join(", "))
        };
        assert_eq!(Status::ENDED_SQL, list(Status::is_terminal));
        assert_eq!(
            Status::AT_AMC_SQL,
            list(|s| matches!(s, Status::Submitting | Status::Running | Status::Fetching))
        );
    }

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
    fn terminal_and_slot_holding_states() {
        let terminal: Vec<_> = Status::ALL
            .into_iter()
            .filter(|s| s.is_terminal())
            .collect();
        assert_eq!(
            terminal,
            [Status::Succeeded, Status::Failed, Status::Cancelled]
        );
        assert!(!Status::Queued.holds_slot() && !Status::Fetching.holds_slot());
        assert!(Status::Running.holds_slot() && Status::Submitting.holds_slot());
    }

    #[test]
    fn round_trips_through_text() {
        for s in Status::ALL {
            assert_eq!(s.as_str().parse::<Status>().unwrap(), s);
        }
        assert!("done".parse::<Status>().is_err());
    }
}
