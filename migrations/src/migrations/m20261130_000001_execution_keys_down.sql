-- Undoes m20261130_000001_execution_keys.sql.
DROP INDEX executions_next_check_idx;
CREATE INDEX executions_next_check_idx ON executions (next_check_at)
    WHERE status NOT IN ('succeeded', 'failed', 'cancelled');
DROP INDEX executions_schedule_fire_key;
ALTER TABLE executions ADD CONSTRAINT executions_schedule_fire_key UNIQUE (schedule_id, scheduled_for);
DROP INDEX executions_collection_id_idx;
CREATE INDEX executions_collection_id_idx ON executions (collection_id);
ALTER TABLE executions
    DROP CONSTRAINT executions_workflow_fkey,
    ADD CONSTRAINT executions_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,
    ADD CONSTRAINT executions_workflow_id_fkey FOREIGN KEY (workflow_id) REFERENCES workflows (id) ON DELETE CASCADE,
    ADD CONSTRAINT executions_instance_id_fkey FOREIGN KEY (instance_id) REFERENCES amc_instances (id) ON DELETE CASCADE;
ALTER TABLE workflows DROP CONSTRAINT workflows_id_instance_user_key;
