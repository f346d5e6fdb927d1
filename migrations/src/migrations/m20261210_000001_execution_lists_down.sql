DROP INDEX executions_retry_of_idx;
ALTER TABLE executions DROP COLUMN retry_of;
DROP INDEX executions_schedule_created_idx;
DROP INDEX executions_user_trigger_created_idx;
DROP INDEX executions_user_status_created_idx;
DROP INDEX executions_instance_created_idx;
DROP INDEX executions_collection_id_idx;
CREATE INDEX executions_collection_id_idx ON executions (collection_id)
    WHERE collection_id IS NOT NULL;
DROP INDEX executions_workflow_created_idx;
CREATE INDEX executions_workflow_created_idx ON executions (workflow_id, created_at);
DROP INDEX executions_user_created_idx;
CREATE INDEX executions_user_created_idx ON executions (user_id, created_at);
