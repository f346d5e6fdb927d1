-- Undoes m20261209_000001_telemetry.sql.
ALTER TABLE executions DROP COLUMN trace_context;
