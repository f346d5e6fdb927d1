-- GET /executions: one keyset index per filter, each ending in (created_at, id) so that a
-- page (newest first, after a cursor) is one index range scan whatever the table's size.
-- The user's own list and the workflow and collection filters replace the earlier
-- (…, created_at) indexes, which these serve as well; the other filters are new.
DROP INDEX executions_user_created_idx;
CREATE INDEX executions_user_created_idx ON executions (user_id, created_at, id);
DROP INDEX executions_workflow_created_idx;
CREATE INDEX executions_workflow_created_idx ON executions (workflow_id, created_at, id);
DROP INDEX executions_collection_id_idx;
CREATE INDEX executions_collection_id_idx ON executions (collection_id, created_at, id)
    WHERE collection_id IS NOT NULL;
CREATE INDEX executions_instance_created_idx ON executions (instance_id, created_at, id);
CREATE INDEX executions_user_status_created_idx ON executions (user_id, status, created_at, id);
-- Runs created through the API (most of them) are listed by the user's index with a
-- filter; only scheduled and collection runs pay for this one.
CREATE INDEX executions_user_trigger_created_idx ON executions (user_id, triggered_by, created_at, id)
    WHERE triggered_by <> 'api';
CREATE INDEX executions_schedule_created_idx ON executions (schedule_id, created_at, id)
    WHERE schedule_id IS NOT NULL;

-- POST /executions/{id}/retry: the run a retry repeats.
ALTER TABLE executions ADD COLUMN retry_of uuid REFERENCES executions (id) ON DELETE SET NULL;
CREATE INDEX executions_retry_of_idx ON executions (retry_of) WHERE retry_of IS NOT NULL;
