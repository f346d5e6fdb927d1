-- One webhook delivery's own transactions, as common/src/webhook/delivery.rs runs them
-- (ops/bench/webhooks.py runs this with pgbench -M prepared on pre-made pending
-- deliveries; one script run = one delivery, two implicit transactions):
--   1. claim_due: the dispatcher's claim, which leases the row for its attempt and reads
--      what it sends (event, endpoint, secret, the run's trace root); ours claims a power
--      of two of its free slots per statement (up to 1,024) with the limit written in, so
--      this is its claim of one (the lease is a bound value in ours);
--   2. record: the 2xx answer, the delivery's end and the endpoint's streak, one statement.
-- The lease is now() + 20 s (AMP_WEBHOOK_TIMEOUT 15 s + 5 s), which ours computes in the
-- client. \gset carries the id and the lease to the record. Builds before the dispatcher
-- attempted its claims itself (results/webhooks.jsonl before 2026-12-08) ran three
-- transactions: a claim of 5 s, then a job's take, then the record.
UPDATE webhook_deliveries d SET next_attempt_at = now() + interval '20 seconds'
FROM events e, webhook_endpoints w
WHERE d.id IN (
    SELECT id FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= now()
    ORDER BY next_attempt_at LIMIT 1 FOR UPDATE SKIP LOCKED)
  AND e.id = d.event_id AND w.id = d.endpoint_id
RETURNING d.id AS taken, d.event_id, e.event_type, d.endpoint_id, d.user_id, d.attempts, d.manual,
  d.next_attempt_at AS lease, w.url, w.enabled, w.secret_enc, w.previous_secret_enc, w.rotated_at,
  e.created_at AS event_created_at, e.payload,
  (SELECT x.trace_context FROM executions x WHERE x.id = e.subject_id) AS trace \gset
WITH d AS (UPDATE webhook_deliveries SET status = 'delivered', attempts = attempts + 1, next_attempt_at = NULL,
      last_response_code = 200, last_attempt_at = now(), last_error = NULL, manual = false, updated_at = now()
    WHERE id = :taken AND status = 'pending' AND next_attempt_at = :lease RETURNING id),
  a AS (INSERT INTO webhook_attempts (delivery_id, status_code, response_body, error, duration_ms, trigger)
    SELECT d.id, 200, NULL, NULL, 1, 'scheduled' FROM d),
  e AS (UPDATE webhook_endpoints SET
      failing_since = CASE WHEN true THEN NULL ELSE now() END,
      last_success_at = CASE WHEN true THEN now() ELSE last_success_at END
    WHERE id = :endpoint_id AND EXISTS (SELECT 1 FROM d) AND CASE WHEN true
      THEN failing_since IS NOT NULL OR last_success_at IS NULL OR last_success_at < now() - interval '1 second'
      ELSE failing_since IS NULL END
    RETURNING failing_since)
SELECT (SELECT count(*) FROM d) AS moved, now() AS now, CASE WHEN true THEN NULL ELSE
  coalesce((SELECT failing_since FROM e), (SELECT failing_since FROM webhook_endpoints WHERE id = :endpoint_id)) END
  AS failing_since;
