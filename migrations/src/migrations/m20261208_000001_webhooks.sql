-- Webhooks and the event feed as CONTRACT gives them.
--
-- Endpoints keep their secret encrypted at rest (and the previous one during a rotation,
-- whose signatures go out beside the new one's for 24 h), why they were disabled and
-- since when they have been failing (the published disable rule).
ALTER TABLE webhook_endpoints
    DROP COLUMN failure_streak,
    ADD COLUMN previous_secret_enc bytea,
    ADD COLUMN rotated_at timestamptz,
    ADD COLUMN disabled_reason text,
    ADD COLUMN failing_since timestamptz,
    ADD COLUMN last_success_at timestamptz;
CREATE INDEX webhook_endpoints_user_created_idx ON webhook_endpoints (user_id, created_at DESC, id DESC);

-- Deliveries: one per (event, subscribed endpoint), written with the event. Statuses as
-- CONTRACT gives them: pending (an attempt is due at next_attempt_at), delivered (a 2xx),
-- failed (every attempt of the schedule failed), skipped (the endpoint was disabled).
ALTER TABLE webhook_deliveries DROP CONSTRAINT webhook_deliveries_status_check;
UPDATE webhook_deliveries SET status = 'delivered' WHERE status = 'succeeded';
UPDATE webhook_deliveries SET status = 'failed' WHERE status = 'dead';
ALTER TABLE webhook_deliveries RENAME COLUMN attempt TO attempts;
ALTER TABLE webhook_deliveries
    ADD CONSTRAINT webhook_deliveries_status_check
        CHECK (status IN ('pending', 'delivered', 'failed', 'skipped')),
    ADD COLUMN user_id uuid REFERENCES users (id) ON DELETE CASCADE,
    ADD COLUMN event_type text,
    -- The next attempt was asked for by a person (recover, test), not the schedule.
    ADD COLUMN manual boolean NOT NULL DEFAULT false,
    DROP COLUMN last_response_body;
UPDATE webhook_deliveries d SET user_id = e.user_id, event_type = e.event_type FROM events e WHERE e.id = d.event_id;
ALTER TABLE webhook_deliveries
    ALTER COLUMN user_id SET NOT NULL,
    ALTER COLUMN event_type SET NOT NULL;
DROP INDEX webhook_deliveries_due_idx;
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
DROP INDEX webhook_deliveries_endpoint_id_idx;
-- The delivery log, newest first, and recovery (failed and skipped since a time).
CREATE INDEX webhook_deliveries_endpoint_created_idx ON webhook_deliveries (endpoint_id, created_at DESC, id DESC);

-- Every attempt: its answer (status code, up to 4 KB of the body), how long it took, and
-- whether the retry schedule or a person (recover, test) asked for it.
CREATE TABLE webhook_attempts (
    id            bigserial PRIMARY KEY,
    delivery_id   uuid NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempted_at  timestamptz NOT NULL DEFAULT now(),
    status_code   integer,
    response_body text,
    error         text,
    duration_ms   integer NOT NULL,
    trigger       text NOT NULL CHECK (trigger IN ('scheduled', 'manual'))
);
CREATE INDEX webhook_attempts_delivery_idx ON webhook_attempts (delivery_id, id);

-- The feed's order: an event's transaction id, then its sequence. A reader only sees
-- events whose transaction is below the oldest one still open (pg_snapshot_xmin), so a
-- cursor never passes an event that is not yet committed.
ALTER TABLE events
    ADD COLUMN txid xid8 NOT NULL DEFAULT pg_current_xact_id(),
    ADD COLUMN seq bigserial;
CREATE INDEX events_user_feed_idx ON events (user_id, txid, seq);

-- Deliveries are written with their event, whatever writes it: one row per subscribed
-- endpoint (skipped when the endpoint is disabled). `webhook.test` goes to one endpoint
-- and is written by its sender. New pending deliveries wake the dispatchers.
CREATE FUNCTION amp_event_deliveries() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    INSERT INTO webhook_deliveries (id, event_id, endpoint_id, user_id, event_type, status, next_attempt_at, created_at)
    SELECT gen_random_uuid(), e.id, w.id, e.user_id, e.event_type,
           CASE WHEN w.enabled THEN 'pending' ELSE 'skipped' END,
           CASE WHEN w.enabled THEN now() END, e.created_at
    FROM new_events e
    JOIN webhook_endpoints w ON w.user_id = e.user_id AND e.event_type = ANY (w.event_types)
    WHERE e.event_type <> 'webhook.test';
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n > 0 THEN
        PERFORM pg_notify('amp_deliveries', '');
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER events_deliveries AFTER INSERT ON events
    REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION amp_event_deliveries();

-- Single-use tickets for EventSource live in Redis; nothing here.
