-- Undoes m20261211_000001_workflow_versions.sql.
ALTER TABLE schedules DROP COLUMN workflow_version;
ALTER TABLE collections DROP COLUMN workflow_version;
ALTER TABLE executions DROP COLUMN workflow_version;
DROP TABLE workflow_versions;
DROP FUNCTION workflow_versions_immutable();
DROP INDEX workflows_tags_idx;
ALTER TABLE workflows DROP COLUMN deleted_at, DROP COLUMN tags, DROP COLUMN version;
