-- Undoes m20261208_000001_webhooks.sql (attempt logs and skipped deliveries are lost).
DROP TRIGGER events_deliveries ON events;
DROP FUNCTION amp_event_deliveries();
DROP INDEX events_user_feed_idx;
ALTER TABLE events DROP COLUMN seq, DROP COLUMN txid;
DROP TABLE webhook_attempts;
DROP INDEX webhook_deliveries_endpoint_created_idx;
CREATE INDEX webhook_deliveries_endpoint_id_idx ON webhook_deliveries (endpoint_id);
DELETE FROM webhook_deliveries WHERE status = 'skipped';
ALTER TABLE webhook_deliveries DROP CONSTRAINT webhook_deliveries_status_check;
UPDATE webhook_deliveries SET status = 'succeeded' WHERE status = 'delivered';
ALTER TABLE webhook_deliveries
    ADD CONSTRAINT webhook_deliveries_status_check
        CHECK (status IN ('pending', 'succeeded', 'failed', 'dead')),
    ADD COLUMN last_response_body text,
    DROP COLUMN manual,
    DROP COLUMN event_type,
    DROP COLUMN user_id;
ALTER TABLE webhook_deliveries RENAME COLUMN attempts TO attempt;
DROP INDEX webhook_endpoints_user_created_idx;
ALTER TABLE webhook_endpoints
    DROP COLUMN last_success_at,
    DROP COLUMN failing_since,
    DROP COLUMN disabled_reason,
    DROP COLUMN rotated_at,
    DROP COLUMN previous_secret_enc,
    ADD COLUMN failure_streak integer NOT NULL DEFAULT 0;
