-- Collections as CONTRACT gives them: windows of any granularity (week on any start day,
-- day, calendar month, or a schedule's fires), the workflow's SQL and parameters pinned at
-- creation, max_concurrency defaulting to 2, and the instance's collection_reserve (slots
-- that collection windows never take). Collections written before it keep their weeks,
-- as windows (below, once collection_windows exists).

ALTER TABLE collections DROP CONSTRAINT collections_granularity_check;
ALTER TABLE collections RENAME COLUMN max_week_attempts TO max_attempts;
ALTER TABLE collections
    ADD CONSTRAINT collections_granularity_check
        CHECK (granularity IN ('week', 'day', 'month', 'schedule')),
    ALTER COLUMN max_concurrency SET DEFAULT 2,
    DROP COLUMN weeks_total,
    DROP COLUMN weeks_succeeded,
    DROP COLUMN weeks_failed,
    ADD COLUMN week_starts text NOT NULL DEFAULT 'monday'
        CHECK (week_starts IN ('monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday')),
    -- The workflow's SQL at creation: a later edit of the workflow does not change a
    -- collection under way. `parameters` holds the merged values it runs with.
    ADD COLUMN sql_query text NOT NULL DEFAULT '',
    ADD COLUMN instance_id uuid REFERENCES amc_instances (id) ON DELETE CASCADE,
    ADD COLUMN schedule_id uuid REFERENCES schedules (id) ON DELETE SET NULL,
    ADD COLUMN window_count integer NOT NULL DEFAULT 0;
ALTER TABLE collections ALTER COLUMN sql_query DROP DEFAULT;
DROP INDEX collections_running_idx;
-- Collections not yet ended (the reconciler looks at them).
CREATE INDEX collections_open_idx ON collections (id) WHERE completed_at IS NULL;
CREATE INDEX collections_user_created_idx ON collections (user_id, created_at DESC, id DESC);

CREATE TABLE collection_windows (
    collection_id uuid NOT NULL REFERENCES collections (id) ON DELETE CASCADE,
    position      integer NOT NULL CHECK (position >= 0),
    -- Local times in the collection's zone, as an execution's window is written.
    window_start  timestamp NOT NULL,
    window_end    timestamp NOT NULL,
    -- pending: no run yet, or waiting for a retry; active: its run has not ended.
    status        text NOT NULL DEFAULT 'pending'
                  CHECK (status IN ('pending', 'active', 'succeeded', 'failed', 'cancelled')),
    attempts      integer NOT NULL DEFAULT 0,
    execution_id  uuid REFERENCES executions (id) ON DELETE SET NULL,
    error_code    text,
    error_message text,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (collection_id, position),
    CONSTRAINT collection_windows_window_check CHECK (window_start < window_end)
);
CREATE INDEX collection_windows_pending_idx ON collection_windows (collection_id, position)
    WHERE status = 'pending';
CREATE INDEX collection_windows_active_idx ON collection_windows (collection_id)
    WHERE status = 'active';
CREATE INDEX collection_windows_execution_idx ON collection_windows (execution_id)
    WHERE execution_id IS NOT NULL;

-- Collections written before this migration (weeks only, with no instance or SQL of their
-- own; a fresh database has none): their weeks become their windows, oldest first. A
-- running week takes its run's outcome when the run has ended, and waits for a new run
-- when it has none; the old rows kept only an error's message. Their instance, SQL and
-- window count are filled by m20261215_000001_collection_attempts.
INSERT INTO collection_windows (collection_id, position, window_start, window_end, status, attempts,
                                execution_id, error_code, error_message, updated_at)
SELECT k.collection_id,
       (row_number() OVER (PARTITION BY k.collection_id ORDER BY k.week_start) - 1)::integer,
       k.week_start, k.week_end,
       CASE WHEN k.status <> 'running' THEN k.status
            WHEN e.status IS NULL THEN 'pending'
            WHEN e.status IN ('succeeded', 'failed', 'cancelled') THEN e.status
            ELSE 'active' END,
       k.attempts, k.execution_id,
       CASE WHEN k.last_error IS NOT NULL OR e.error_code IS NOT NULL
            THEN coalesce(e.error_code, 'amc_failed') END,
       coalesce(k.last_error, e.error_message), k.updated_at
FROM collection_weeks k LEFT JOIN executions e ON e.id = k.execution_id;
DROP TABLE collection_weeks;

-- Runs an instance started since a time (its daily quota's count); new runs, not yet
-- submitting, add no entry.
CREATE INDEX executions_instance_submitting_idx ON executions (instance_id, submitting_at)
    WHERE submitting_at IS NOT NULL;

-- Slots of an instance that collection windows never take; NULL is the default,
-- min(2, cap - 1).
ALTER TABLE amc_instances
    ADD COLUMN collection_reserve integer CHECK (collection_reserve >= 0),
    ADD CONSTRAINT amc_instances_collection_reserve_below_cap
        CHECK (collection_reserve IS NULL OR collection_reserve < max_concurrent_executions);
