//! The states of a webhook delivery of an event (`webhook_deliveries.status`).

crate::text_enum! {
    /// Where a delivery stands.
    pub enum DeliveryStatus("delivery status") {
        /// Not yet delivered; tried again at `next_attempt_at`.
        Pending = "pending",
        /// The endpoint answered 2xx.
        Succeeded = "succeeded",
        /// The last attempt failed (more may follow).
        Failed = "failed",
        /// Given up on.
        Dead = "dead",
    }
}

impl DeliveryStatus {
    /// Whether the event is still needed for this delivery (only a succeeded one is done).
    pub fn needs_event(self) -> bool {
        self != Self::Succeeded
    }
}
