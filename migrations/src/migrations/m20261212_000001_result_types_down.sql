-- Undoes m20261212_000001_result_types.sql.
DROP INDEX IF EXISTS executions_stored_results_idx;
ALTER TABLE executions DROP COLUMN results_expired_at;
