-- Undoes m20261215_000001_collection_attempts.sql (the repaired collections stay repaired).
ALTER TABLE collections ALTER COLUMN instance_id DROP NOT NULL;
ALTER TABLE collections DROP COLUMN status_reason;
DROP INDEX collection_windows_failed_idx;
DROP INDEX executions_collection_window_idx;
ALTER TABLE executions DROP COLUMN collection_window;
