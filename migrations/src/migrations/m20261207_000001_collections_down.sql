-- Undoes m20261207_000001_collections.sql (collections of other granularities than week
-- and their windows are lost; week windows go back to weeks).
ALTER TABLE amc_instances
    DROP CONSTRAINT amc_instances_collection_reserve_below_cap,
    DROP COLUMN collection_reserve;
DROP INDEX executions_instance_submitting_idx;
DROP INDEX collections_user_created_idx;
DROP INDEX collections_open_idx;
DELETE FROM collections WHERE granularity <> 'week';
ALTER TABLE collections
    DROP COLUMN window_count,
    DROP COLUMN schedule_id,
    DROP COLUMN instance_id,
    DROP COLUMN sql_query,
    DROP COLUMN week_starts,
    ADD COLUMN weeks_total integer NOT NULL DEFAULT 0,
    ADD COLUMN weeks_succeeded integer NOT NULL DEFAULT 0,
    ADD COLUMN weeks_failed integer NOT NULL DEFAULT 0,
    ALTER COLUMN max_concurrency SET DEFAULT 1,
    DROP CONSTRAINT collections_granularity_check;
ALTER TABLE collections RENAME COLUMN max_attempts TO max_week_attempts;
ALTER TABLE collections ADD CONSTRAINT collections_granularity_check CHECK (granularity IN ('week'));
CREATE INDEX collections_running_idx ON collections (status) WHERE status IN ('running');
CREATE TABLE collection_weeks (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    collection_id uuid NOT NULL REFERENCES collections (id) ON DELETE CASCADE,
    week_start    timestamp NOT NULL,
    week_end      timestamp NOT NULL,
    status        text NOT NULL DEFAULT 'pending'
                  CHECK (status IN ('pending', 'running', 'succeeded', 'failed', 'cancelled')),
    execution_id  uuid REFERENCES executions (id) ON DELETE SET NULL,
    attempts      integer NOT NULL DEFAULT 0,
    last_error    text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT collection_weeks_window_check CHECK (week_start < week_end),
    CONSTRAINT collection_weeks_collection_week_key UNIQUE (collection_id, week_start)
);
CREATE INDEX collection_weeks_execution_id_idx ON collection_weeks (execution_id);
INSERT INTO collection_weeks (collection_id, week_start, week_end, status, execution_id, attempts, last_error,
                              updated_at)
SELECT collection_id, window_start, window_end, CASE status WHEN 'active' THEN 'running' ELSE status END,
       execution_id, attempts, error_message, updated_at
FROM collection_windows;
UPDATE collections c SET
    weeks_total = k.total, weeks_succeeded = k.succeeded, weeks_failed = k.failed
FROM (SELECT collection_id, count(*) AS total, count(*) FILTER (WHERE status = 'succeeded') AS succeeded,
             count(*) FILTER (WHERE status = 'failed') AS failed
      FROM collection_weeks GROUP BY collection_id) k
WHERE k.collection_id = c.id;
DROP TABLE collection_windows;
