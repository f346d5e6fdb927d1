-- Schedules as CONTRACT gives them: overlap and catch-up policies, auto-pause, the run
-- history of every tick, the scheduler replicas (whose lives decide which ticks were
-- missed), and a NOTIFY that wakes the schedulers when a schedule changes or one of its
-- runs ends.
ALTER TABLE schedules DROP CONSTRAINT schedules_overlap_policy_check;
ALTER TABLE schedules
    ADD CONSTRAINT schedules_overlap_policy_check
        CHECK (overlap_policy IN ('skip', 'buffer_one', 'cancel_other', 'allow_all')),
    ADD COLUMN catch_up_window_secs bigint NOT NULL DEFAULT 86400 CHECK (catch_up_window_secs >= 0),
    ADD COLUMN pause_after_failures integer CHECK (pause_after_failures >= 1),
    ADD COLUMN consecutive_failures integer NOT NULL DEFAULT 0,
    ADD COLUMN paused_reason text,
    ADD COLUMN buffered_for timestamptz,
    ADD COLUMN missed_total bigint NOT NULL DEFAULT 0,
    -- Ticks of the rule before an edit that were due but not yet fired when the rule
    -- changed: the next pass fires them (a JSON array of instants).
    ADD COLUMN carried_ticks jsonb;
-- Schedules a pass looks at besides those due by `next_run_at`: a buffered tick waiting
-- for its run to end, or ticks carried over an edit.
CREATE INDEX schedules_pending_idx ON schedules (id)
    WHERE buffered_for IS NOT NULL OR carried_ticks IS NOT NULL;

CREATE TABLE schedule_runs (
    id            uuid PRIMARY KEY,
    schedule_id   uuid NOT NULL REFERENCES schedules (id) ON DELETE CASCADE,
    scheduled_for timestamptz NOT NULL,
    fired_at      timestamptz NOT NULL DEFAULT now(),
    outcome       text NOT NULL
                  CHECK (outcome IN ('started', 'skipped_overlap', 'missed', 'buffered', 'triggered', 'invalid')),
    execution_id  uuid REFERENCES executions (id) ON DELETE SET NULL,
    missed_count  bigint NOT NULL DEFAULT 1,
    error_code    text,
    error_message text
);
-- One entry per tick; triggers are instants of their own.
CREATE UNIQUE INDEX schedule_runs_tick_key ON schedule_runs (schedule_id, scheduled_for)
    WHERE outcome <> 'triggered';
CREATE INDEX schedule_runs_history_idx ON schedule_runs (schedule_id, scheduled_for DESC, id DESC);
-- Pruning finds old entries by it.
CREATE INDEX schedule_runs_fired_at_idx ON schedule_runs (fired_at);

-- Runs of a schedule that have not ended (the overlap policies look them up).
CREATE INDEX executions_schedule_active_idx ON executions (schedule_id)
    WHERE schedule_id IS NOT NULL AND status NOT IN ('succeeded', 'failed', 'cancelled');

CREATE TABLE schedulers (
    id           text PRIMARY KEY,
    started_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    -- Alive until then without another heartbeat (a replica killed without a word).
    expires_at   timestamptz NOT NULL DEFAULT now(),
    stopped_at   timestamptz
);

-- Wakes the schedulers when a schedule may be due earlier than they think: a new one, one
-- enabled, retimed earlier, or with ticks carried over an edit. A fire pass moving
-- `next_run_at` later wakes nobody.
CREATE FUNCTION amp_notify_schedules() RETURNS trigger LANGUAGE plpgsql AS
    $$ BEGIN PERFORM pg_notify('amp_schedules', ''); RETURN NULL; END $$;
CREATE TRIGGER schedules_notify_insert AFTER INSERT ON schedules
    FOR EACH STATEMENT EXECUTE FUNCTION amp_notify_schedules();
CREATE TRIGGER schedules_notify_sooner AFTER UPDATE ON schedules FOR EACH ROW
    WHEN (NEW.enabled AND (NOT OLD.enabled
          OR NEW.next_run_at < OLD.next_run_at
          OR (OLD.next_run_at IS NULL AND NEW.next_run_at IS NOT NULL)
          OR (NEW.carried_ticks IS NOT NULL AND OLD.carried_ticks IS NULL)))
    EXECUTE FUNCTION amp_notify_schedules();
