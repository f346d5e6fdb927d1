//! What a schedule does when a tick finds its previous run still going (overlap), and with
//! the ticks that came due while no scheduler ran (catch-up); how each tick ended up.

use std::time::Duration;

crate::text_enum! {
    /// A tick that finds the schedule's previous run not yet ended.
    pub enum Overlap("overlap policy") {
        /// Starts nothing; the tick is recorded `skipped_overlap`.
        Skip = "skip",
        /// At most one tick waits (`buffered`) and starts when the previous run ends.
        BufferOne = "buffer_one",
        /// The running one is cancelled (at AMC too) and the tick starts.
        CancelOther = "cancel_other",
        /// Starts anyway.
        AllowAll = "allow_all",
    }
}

crate::text_enum! {
    /// The ticks that came due while no scheduler ran.
    pub enum CatchUpPolicy("catch-up policy") {
        /// Fires none; each is recorded `missed`.
        None = "none",
        /// Fires the last one (within the window); the rest are `missed`.
        Latest = "latest",
        /// Fires every one within the window; older ones are `missed`.
        All = "all",
    }
}

/// A catch-up policy with its window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatchUp {
    pub policy: CatchUpPolicy,
    /// How old a missed tick may be and still be fired.
    pub window: Duration,
}

/// The longest catch-up window (the replicas' lives that decide missed ticks are kept
/// longer than this).
pub const MAX_CATCH_UP_WINDOW: Duration = Duration::from_secs(31 * 24 * 3600);

impl CatchUp {
    /// Reads `{"policy","window"}` as a client sends it (each optional), naming the bad
    /// field (below `catch_up`).
    pub fn from_json(v: &serde_json::Value) -> Result<Self, (&'static str, String)> {
        let obj = v.as_object().ok_or((
            "",
            "must be an object such as {\"policy\":\"latest\",\"window\":\"24h\"}".to_string(),
        ))?;
        if let Some(extra) = obj
            .keys()
            .find(|k| !["policy", "window"].contains(&k.as_str()))
        {
            return Err((
                "",
                format!("`{extra}` is not a field of catch_up (policy, window)"),
            ));
        }
        let mut out = Self::default();
        match obj.get("policy") {
            None | Some(serde_json::Value::Null) => {}
            Some(p) => {
                out.policy = p
                    .as_str()
                    .and_then(|p| p.parse().ok())
                    .ok_or(("policy", "must be none, latest or all".to_string()))?;
            }
        }
        match obj.get("window") {
            None | Some(serde_json::Value::Null) => {}
            Some(w) => {
                let text = w
                    .as_str()
                    .ok_or(("window", "must be a duration such as 24h".to_string()))?;
                let d = crate::config::parse_duration(text).map_err(|e| ("window", e))?;
                if d > MAX_CATCH_UP_WINDOW {
                    return Err(("window", "must be at most 31d".to_string()));
                }
                out.window = d;
            }
        }
        Ok(out)
    }
}

impl Default for CatchUp {
    fn default() -> Self {
        Self {
            policy: CatchUpPolicy::Latest,
            window: Duration::from_secs(24 * 3600),
        }
    }
}

crate::text_enum! {
    /// How a tick (or a trigger) ended up, in the run history.
    pub enum RunOutcome("run outcome") {
        /// A run was started for it.
        Started = "started",
        /// The previous run was still going (`skip`, or a second tick under `buffer_one`).
        SkippedOverlap = "skipped_overlap",
        /// It came due while no scheduler ran, and the catch-up policy did not fire it.
        Missed = "missed",
        /// It waits for the previous run to end (`buffer_one`).
        Buffered = "buffered",
        /// A run started by hand (`POST /schedules/{id}/trigger`), not a tick.
        Triggered = "triggered",
        /// Its run could not be made (a placeholder without a value): the reason is
        /// recorded, no run is created.
        Invalid = "invalid",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catch_up_reads_the_contract_shape_and_names_bad_fields() {
        let read = |s: &str| CatchUp::from_json(&serde_json::from_str(s).unwrap());
        assert_eq!(read("{}").unwrap(), CatchUp::default());
        let c = read(r#"{"policy":"all","window":"2h"}"#).unwrap();
        assert_eq!(
            (c.policy, c.window),
            (CatchUpPolicy::All, Duration::from_secs(7200))
        );
        assert_eq!(read(r#"{"policy":"some"}"#).unwrap_err().0, "policy");
        assert_eq!(read(r#"{"window":"soon"}"#).unwrap_err().0, "window");
        assert_eq!(read(r#"{"window":"400d"}"#).unwrap_err().0, "window");
        assert_eq!(read(r#"{"when":1}"#).unwrap_err().0, "");
    }
}
