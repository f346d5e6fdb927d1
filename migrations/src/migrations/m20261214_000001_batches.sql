-- Batch runs: one workflow's SQL over up to 100 of the user's instances. Each instance's
-- run is a normal execution (`triggered_by` 'batch') that names its batch.
--
-- A batch run sits on another instance of its user than its workflow's, so the composite
-- key that tied a run's instance to its workflow's (executions_workflow_fkey on
-- (workflow_id, instance_id, user_id)) gives way to two keys that still keep tenancy in
-- the database: a run's workflow is its user's, and so is its instance. Deletes cascade
-- as before: a user's, an instance's or a workflow's runs go with it.
ALTER TABLE workflows ADD CONSTRAINT workflows_id_user_key UNIQUE (id, user_id);
ALTER TABLE amc_instances ADD CONSTRAINT amc_instances_id_user_key UNIQUE (id, user_id);
ALTER TABLE executions
    DROP CONSTRAINT executions_workflow_fkey,
    ADD CONSTRAINT executions_workflow_fkey FOREIGN KEY (workflow_id, user_id)
        REFERENCES workflows (id, user_id) ON DELETE CASCADE,
    ADD CONSTRAINT executions_instance_fkey FOREIGN KEY (instance_id, user_id)
        REFERENCES amc_instances (id, user_id) ON DELETE CASCADE,
    DROP CONSTRAINT executions_triggered_by_check,
    ADD CONSTRAINT executions_triggered_by_check
        CHECK (triggered_by IN ('api', 'schedule', 'collection', 'batch'));
ALTER TABLE workflows DROP CONSTRAINT workflows_id_instance_user_key;

CREATE TABLE batches (
    id                uuid PRIMARY KEY,
    user_id           uuid NOT NULL,
    workflow_id       uuid NOT NULL,
    -- The version every run of the batch runs.
    workflow_version  integer NOT NULL,
    name              text NOT NULL,
    -- The values common to every run (each run holds its own merged values).
    parameters        jsonb NOT NULL DEFAULT '{}',
    -- The window every run covers; NULL: each run got its instance's default window.
    time_window_start timestamp,
    time_window_end   timestamp,
    time_zone         text,
    -- running until every run has ended; then succeeded, failed (some run failed) or
    -- cancelled (the batch was cancelled).
    status            text NOT NULL DEFAULT 'running'
                      CHECK (status IN ('running', 'succeeded', 'failed', 'cancelled')),
    run_count         integer NOT NULL CHECK (run_count BETWEEN 1 AND 100),
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    -- Set once, by the transaction that ends the batch's last run (with batch.completed).
    completed_at      timestamptz,
    CONSTRAINT batches_id_user_key UNIQUE (id, user_id),
    CONSTRAINT batches_workflow_fkey FOREIGN KEY (workflow_id, user_id)
        REFERENCES workflows (id, user_id) ON DELETE CASCADE,
    CONSTRAINT batches_time_window_check CHECK (time_window_start < time_window_end)
);
CREATE INDEX batches_user_created_idx ON batches (user_id, created_at DESC, id DESC);

-- A run's batch is its user's too. Only batch runs pay for the index: it serves
-- GET /executions?batch_id= (newest first, keyset) and the counts of a batch.
ALTER TABLE executions ADD COLUMN batch_id uuid,
    ADD CONSTRAINT executions_batch_fkey FOREIGN KEY (batch_id, user_id)
        REFERENCES batches (id, user_id) ON DELETE CASCADE;
CREATE INDEX executions_batch_created_idx ON executions (batch_id, created_at, id)
    WHERE batch_id IS NOT NULL;
