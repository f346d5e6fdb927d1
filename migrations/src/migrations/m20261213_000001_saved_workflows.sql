-- Saved workflows for big queries. A rendered query over AMP_AMC_ADHOC_MAX_BYTES runs
-- through a saved workflow at AMC whose id derives from the SQL's hash
-- (`amp_<first 32 hex digits of its sha256>`). Each instance's saved workflows are
-- recorded here before AMC is asked to create them, so the scheduler can delete those no
-- run needs any more (after AMP_AMC_SAVED_WORKFLOW_GRACE); a run records the one it used.
CREATE TABLE amc_saved_workflows (
    instance_id uuid NOT NULL REFERENCES amc_instances (id) ON DELETE CASCADE,
    workflow_id text NOT NULL,
    sql_hash text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (instance_id, workflow_id)
);
-- What the cleanup duty looks for: the longest unused first.
CREATE INDEX amc_saved_workflows_last_used_idx ON amc_saved_workflows (last_used_at);
ALTER TABLE executions ADD COLUMN amc_workflow_id text;
-- Whether a run still needs a saved workflow.
CREATE INDEX executions_amc_workflow_idx ON executions (instance_id, amc_workflow_id)
    WHERE amc_workflow_id IS NOT NULL;
