-- Workflow versions: every change of a workflow's SQL or default parameters writes a new
-- immutable version (1, 2, …; the create writes 1). `workflows` keeps the latest copy
-- (and its number) so a run of the latest version reads one row. Runs, schedules and
-- collections record the version they use; a schedule's NULL means "the latest".
-- Workflows also gain tags and a soft delete (their runs' history stays readable).
ALTER TABLE workflows
    ADD COLUMN version integer NOT NULL DEFAULT 1,
    ADD COLUMN tags text[] NOT NULL DEFAULT '{}',
    ADD COLUMN deleted_at timestamptz;
CREATE INDEX workflows_tags_idx ON workflows USING gin (tags);

CREATE TABLE workflow_versions (
    workflow_id uuid NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    version     integer NOT NULL CHECK (version >= 1),
    sql_query   text NOT NULL,
    parameters  jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workflow_id, version)
);
INSERT INTO workflow_versions (workflow_id, version, sql_query, parameters, created_at)
    SELECT id, 1, sql_query, parameters, created_at FROM workflows;

-- A version, once written, never changes.
CREATE FUNCTION workflow_versions_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'workflow versions are immutable';
END
$$;
CREATE TRIGGER workflow_versions_immutable BEFORE UPDATE ON workflow_versions
    FOR EACH ROW EXECUTE FUNCTION workflow_versions_immutable();

-- Existing runs and collections ran version 1 (the only one there was). A constant default
-- added with the column is kept in the catalogue, not written into each row, so the big
-- executions table is not rewritten; new rows always name their version.
ALTER TABLE executions ADD COLUMN workflow_version integer DEFAULT 1;
ALTER TABLE executions ALTER COLUMN workflow_version DROP DEFAULT;
ALTER TABLE collections ADD COLUMN workflow_version integer DEFAULT 1;
ALTER TABLE collections ALTER COLUMN workflow_version DROP DEFAULT;
ALTER TABLE schedules ADD COLUMN workflow_version integer;
