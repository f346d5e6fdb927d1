-- Not what the worker does today: the same delivery work in batches of :batch (pgbench
-- -D batch=50), to size a fix (ops/bench/webhooks.py --clients b8). One script run =
-- :batch deliveries, two implicit transactions:
--   1. claim and take at once: the dispatcher leases the deliveries for the attempt
--      (now() + 20 s) and reads what each job sends (event, endpoint, secret), returned
--      to the client as one JSON array;
--   2. record every 2xx of the batch in one statement (the delivery, its attempt row,
--      the endpoint's streak at most once a second), guarded by each lease.
WITH c AS (
    SELECT id FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= now()
    ORDER BY next_attempt_at LIMIT :batch FOR UPDATE SKIP LOCKED),
  t AS (UPDATE webhook_deliveries d SET next_attempt_at = now() + interval '20 seconds'
    FROM c, events e, webhook_endpoints w
    WHERE d.id = c.id AND e.id = d.event_id AND w.id = d.endpoint_id
    RETURNING d.id, d.event_id, e.event_type, d.endpoint_id, d.user_id, d.attempts, d.manual,
      d.next_attempt_at AS lease, w.url, w.enabled, w.secret_enc, w.previous_secret_enc, w.rotated_at,
      e.created_at AS event_created_at, e.payload, (SELECT x.trace_context FROM executions x
        WHERE x.id = e.subject_id) AS trace)
SELECT json_agg(t) AS work, array_agg(t.id) AS ids, array_agg(t.lease) AS leases FROM t \gset
WITH d AS (UPDATE webhook_deliveries w SET status = 'delivered', attempts = attempts + 1, next_attempt_at = NULL,
      last_response_code = 200, last_attempt_at = now(), last_error = NULL, manual = false, updated_at = now()
    FROM unnest(:ids::uuid[], :leases::timestamptz[]) AS r(id, lease)
    WHERE w.id = ANY (:ids::uuid[]) AND w.id = r.id AND w.status = 'pending' AND w.next_attempt_at = r.lease
    RETURNING w.id, w.endpoint_id),
  a AS (INSERT INTO webhook_attempts (delivery_id, status_code, response_body, error, duration_ms, trigger)
    SELECT d.id, 200, NULL, NULL, 1, 'scheduled' FROM d),
  e AS (UPDATE webhook_endpoints SET failing_since = NULL, last_success_at = now()
    WHERE id IN (SELECT endpoint_id FROM d)
      AND (failing_since IS NOT NULL OR last_success_at IS NULL OR last_success_at < now() - interval '1 second')
    RETURNING failing_since)
SELECT count(*) AS moved FROM d;
