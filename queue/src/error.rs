//! Error type of the queue crate.

/// Errors returned by the producer, the backend and the helpers of this crate.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// A Redis command failed (connection, timeout, server error).
    #[error("redis error: {0}")]
    Redis(#[from] redis::RedisError),
    /// A payload could not be serialized to JSON.
    #[error("payload encoding failed: {0}")]
    Encode(#[from] serde_json::Error),
    /// A stream entry or delayed member does not have the expected layout.
    #[error("invalid queue entry: {0}")]
    InvalidEntry(String),
    /// The backend was polled outside of a tokio runtime.
    #[error("the redis queue backend needs a tokio runtime: {0}")]
    NoRuntime(String),
    /// The configuration is unusable (e.g. an empty prefix or queue name).
    #[error("invalid queue configuration: {0}")]
    Config(String),
}

/// Result alias of this crate.
pub type Result<T, E = QueueError> = std::result::Result<T, E>;
