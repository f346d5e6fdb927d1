-- Cheaper writes of new executions, and one more rule enforced.
--
-- An execution's user and instance are those of its workflow: one composite foreign key
-- to workflows (id, instance_id, user_id) says so and replaces the three single-column keys
-- to users, workflows and amc_instances. Deletes still cascade (user -> workflows ->
-- executions; instance -> workflows -> executions), and every insert is checked once
-- instead of three times. A workflow's instance cannot change while it has executions:
-- runs keep the instance they ran on.
ALTER TABLE workflows ADD CONSTRAINT workflows_id_instance_user_key UNIQUE (id, instance_id, user_id);
ALTER TABLE executions
    DROP CONSTRAINT executions_user_id_fkey,
    DROP CONSTRAINT executions_workflow_id_fkey,
    DROP CONSTRAINT executions_instance_id_fkey,
    ADD CONSTRAINT executions_workflow_fkey FOREIGN KEY (workflow_id, instance_id, user_id)
        REFERENCES workflows (id, instance_id, user_id) ON DELETE CASCADE;
-- Indexes that every new run paid for with an entry it does not need: runs of no
-- collection, runs of no schedule, and queued runs (no next check yet).
DROP INDEX executions_collection_id_idx;
CREATE INDEX executions_collection_id_idx ON executions (collection_id)
    WHERE collection_id IS NOT NULL;
ALTER TABLE executions DROP CONSTRAINT executions_schedule_fire_key;
CREATE UNIQUE INDEX executions_schedule_fire_key ON executions (schedule_id, scheduled_for)
    WHERE schedule_id IS NOT NULL;
DROP INDEX executions_next_check_idx;
CREATE INDEX executions_next_check_idx ON executions (next_check_at)
    WHERE next_check_at IS NOT NULL AND status NOT IN ('succeeded', 'failed', 'cancelled');
