-- Collections: every attempt's run linked to its window, the failed windows found by an
-- index, why a collection was closed, and the repair of collections written before
-- m20261207_000001_collections copied their weeks.

-- Which window of its collection a run is an attempt of (the runs of a window, oldest
-- first, are its attempts). Runs written before this column find their window by their
-- collection and time window (the windows of a collection do not overlap).
ALTER TABLE executions ADD COLUMN collection_window integer CHECK (collection_window >= 0);
UPDATE executions e SET collection_window = w.position
FROM collection_windows w
WHERE e.collection_id = w.collection_id AND e.triggered_by = 'collection'
  AND e.time_window_start = w.window_start AND e.time_window_end = w.window_end;
CREATE INDEX executions_collection_window_idx ON executions (collection_id, collection_window, created_at)
    WHERE collection_window IS NOT NULL;

-- A collection's failed windows (its body lists them; `GET …/windows?status=failed`).
CREATE INDEX collection_windows_failed_idx ON collection_windows (collection_id, position)
    WHERE status = 'failed';

-- Why a collection has its status when neither its windows nor its owner decided it.
ALTER TABLE collections ADD COLUMN status_reason text;

-- Collections written before windows existed have no instance or SQL of their own: their
-- weeks became windows (m20261207_000001_collections), or were lost when an earlier build
-- of that migration dropped them. They take their workflow's instance and SQL (with its
-- defaults under their values), their first day as the week's start and their window
-- count; an ended one gets an end time; an open one with no window left is closed as
-- cancelled, with the reason. (A collection made since always has at least one window.)
UPDATE collections c SET
    status = 'cancelled',
    completed_at = now(),
    updated_at = now(),
    status_reason = 'closed by migration m20261215_000001_collection_attempts: its weeks were lost '
        'when collections moved to windows; create it again to run it'
WHERE c.completed_at IS NULL AND c.status IN ('running', 'paused')
  AND NOT EXISTS (SELECT 1 FROM collection_windows w WHERE w.collection_id = c.id);
UPDATE collections c SET
    instance_id = w.instance_id,
    sql_query = w.sql_query,
    parameters = w.parameters || c.parameters,
    week_starts = lower(to_char(c.start_date, 'FMDay')),
    window_count = (SELECT count(*) FROM collection_windows x WHERE x.collection_id = c.id),
    completed_at = CASE WHEN c.status IN ('succeeded', 'failed', 'cancelled')
                        THEN coalesce(c.completed_at, c.updated_at) END
FROM workflows w
WHERE w.id = c.workflow_id AND c.instance_id IS NULL;
ALTER TABLE collections ALTER COLUMN instance_id SET NOT NULL;
