-- The root of a run's trace (W3C traceparent text of the request that created it), so
-- that every step of the run, and the webhook deliveries of its events, join one trace
-- even when a job was lost and pushed again. NULL when tracing is off.
ALTER TABLE executions ADD COLUMN trace_context text;
