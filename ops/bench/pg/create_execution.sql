-- The transaction behind POST /workflows/{id}/executions, one request per transaction:
-- the execution row, its first audit row and its `execution.queued` event (W5 baseline;
-- run by w5.sh against the API's own migrated database, -D user_id/workflow_id/instance_id).
BEGIN;
INSERT INTO executions (id, user_id, workflow_id, instance_id, status, sql_query, parameters,
  time_window_start, time_window_end, time_zone, triggered_by)
VALUES (gen_random_uuid(), ':user_id', ':workflow_id', ':instance_id', 'queued',
  'SELECT campaign, SUM(impressions) AS impressions FROM dsp_impressions WHERE advertiser = ''ENTITY1A2B3C'' AND lookback = 7 GROUP BY campaign',
  '{"advertiser":"ENTITY1A2B3C","lookback_days":7}', '2026-01-01T00:00:00', '2026-01-08T00:00:00', 'UTC', 'api')
RETURNING id AS exec_id \gset
INSERT INTO execution_transitions (execution_id, from_status, to_status, reason)
VALUES (':exec_id', NULL, 'queued', 'created by api');
INSERT INTO events (id, user_id, event_type, subject_id, payload)
VALUES (gen_random_uuid(), ':user_id', 'execution.queued', ':exec_id',
  '{"id":"00000000-0000-0000-0000-000000000000","workflow_id":"00000000-0000-0000-0000-000000000000","instance_id":"00000000-0000-0000-0000-000000000000","status":"queued","sql_query":"SELECT campaign, SUM(impressions) AS impressions FROM dsp_impressions WHERE advertiser = ''ENTITY1A2B3C'' AND lookback = 7 GROUP BY campaign","parameters":{"advertiser":"ENTITY1A2B3C","lookback_days":7},"time_window":{"start":"2026-01-01T00:00:00","end":"2026-01-08T00:00:00","time_zone":"UTC"},"amc_execution_id":null,"attempt":0,"row_count":null,"error":null,"triggered_by":"api","created_at":"2026-01-01T00:00:00Z"}');
COMMIT;
