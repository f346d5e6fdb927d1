-- Typed results and their retention. Column types are saved inside `result_columns`
-- (objects {"name", "type"}; results stored earlier keep their plain array of names and
-- are served as strings), so only retention needs schema: when the scheduler removed a
-- run's stored result past AMP_RESULTS_RETENTION (the run keeps its row; its
-- result_location is cleared).
ALTER TABLE executions ADD COLUMN results_expired_at timestamptz;
-- What the retention duty looks for: stored results, oldest first.
CREATE INDEX executions_stored_results_idx ON executions (completed_at)
    WHERE result_location IS NOT NULL;
