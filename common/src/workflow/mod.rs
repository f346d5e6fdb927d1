//! Workflows beyond their row (`crate::repo::workflows`): immutable versions, the checks
//! before a delete, the default time window of a run, and validating a run without
//! recording it.

mod delete;
mod validate;
mod versions;
mod window;

pub use delete::{DeleteError, InUse, delete};
pub use validate::{RunInputs, ValidateError, Validated, check_defaults, validate};
pub use versions::{VERSION_COLUMNS, VersionRow, get_version, list_versions};
pub use window::{DEFAULT_WINDOW_DAYS, DEFAULT_WINDOW_LAG_DAYS, default_window, instance_zone};
