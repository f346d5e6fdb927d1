//! The `statusReason` texts of FAILED runs (amc-api.md §3.2, §4, §8).

/// Why an injected FAILED run failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailReason {
    /// "Was unable to compile workflow … undeclared parameter ad_product_type."
    Compile,
    /// The privacy overlap rejection of amc-api.md §3.2.
    Privacy,
    /// The execution timed out.
    Timeout,
}

/// The compile error's tail (after `Was unable to compile workflow <id> `).
pub const COMPILE_ERROR: &str = "because it was found to be invalid: Filter operation filter_operation referenced an undeclared parameter ad_product_type.";

impl FailReason {
    /// Every reason, in draw order.
    pub const ALL: [FailReason; 3] = [Self::Compile, Self::Privacy, Self::Timeout];

    /// The JSON name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Compile => "compile",
            Self::Privacy => "privacy",
            Self::Timeout => "timeout",
        }
    }

    /// The reason named `s`.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// The reason picked by a draw.
    pub fn from_draw(x: u64) -> Self {
        Self::ALL[(x % 3) as usize]
    }

    /// AMC's words for execution `execution_id` of `workflow_id` with timeout `timeout_secs`.
    pub fn text(self, execution_id: &str, workflow_id: &str, timeout_secs: u64) -> String {
        match self {
            Self::Compile => {
                format!("Was unable to compile workflow {workflow_id} {COMPILE_ERROR}")
            }
            Self::Privacy => privacy_rejection(execution_id, workflow_id),
            Self::Timeout => timeout_reason(timeout_secs),
        }
    }
}

/// The privacy overlap rejection (S1).
pub fn privacy_rejection(execution_id: &str, workflow_id: &str) -> String {
    format!(
        "Execution \"{execution_id}\" of workflow \"{workflow_id}\" could not be run because too many workflows have already been run against the same input data sources in the same or overlapping time windows."
    )
}

/// A timed-out execution.
pub fn timeout_reason(timeout_secs: u64) -> String {
    format!("Workflow execution timed out after {timeout_secs} seconds.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_match_amc() {
        assert!(
            FailReason::Compile
                .text("e", "transient_1", 60)
                .starts_with("Was unable to compile workflow transient_1 because")
        );
        assert!(
            FailReason::Privacy
                .text("e", "w", 60)
                .contains("overlapping time windows")
        );
        assert_eq!(
            FailReason::Timeout.text("e", "w", 60),
            "Workflow execution timed out after 60 seconds."
        );
        let drawn: std::collections::HashSet<_> = (0..3).map(FailReason::from_draw).collect();
        assert_eq!(drawn.len(), 3);
    }
}
