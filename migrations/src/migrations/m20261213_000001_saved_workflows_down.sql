-- Undoes m20261213_000001_saved_workflows.sql.
DROP INDEX IF EXISTS executions_amc_workflow_idx;
ALTER TABLE executions DROP COLUMN amc_workflow_id;
DROP TABLE amc_saved_workflows;
