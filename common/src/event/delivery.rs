//! The states of a webhook delivery of an event (`webhook_deliveries.status`), as CONTRACT
//! gives them.

crate::text_enum! {
    /// Where a delivery stands.
    pub enum DeliveryStatus("delivery status") {
        /// An attempt is due at `next_attempt_at` (or under way).
        Pending = "pending",
        /// The endpoint answered 2xx.
        Delivered = "delivered",
        /// Every attempt of the retry schedule failed (`recover` sends it again).
        Failed = "failed",
        /// The endpoint was disabled, by hand or by the rule (`recover` sends it again).
        Skipped = "skipped",
    }
}

impl DeliveryStatus {
    /// Whether the event is still needed for this delivery (only a delivered one is done).
    pub fn needs_event(self) -> bool {
        self != Self::Delivered
    }
}
