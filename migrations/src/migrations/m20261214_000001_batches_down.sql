-- Batch runs, and runs on another instance than their workflow's (retries of batch runs),
-- cannot live under the old check and composite key: they go, with the batches.
DELETE FROM executions WHERE triggered_by = 'batch';
DELETE FROM executions e USING workflows w
    WHERE w.id = e.workflow_id AND w.instance_id <> e.instance_id;
DROP INDEX executions_batch_created_idx;
ALTER TABLE executions DROP COLUMN batch_id;
DROP TABLE batches;
ALTER TABLE workflows ADD CONSTRAINT workflows_id_instance_user_key UNIQUE (id, instance_id, user_id);
ALTER TABLE executions
    DROP CONSTRAINT executions_triggered_by_check,
    ADD CONSTRAINT executions_triggered_by_check
        CHECK (triggered_by IN ('api', 'schedule', 'collection')),
    DROP CONSTRAINT executions_instance_fkey,
    DROP CONSTRAINT executions_workflow_fkey,
    ADD CONSTRAINT executions_workflow_fkey FOREIGN KEY (workflow_id, instance_id, user_id)
        REFERENCES workflows (id, instance_id, user_id) ON DELETE CASCADE;
ALTER TABLE amc_instances DROP CONSTRAINT amc_instances_id_user_key;
ALTER TABLE workflows DROP CONSTRAINT workflows_id_user_key;
