-- Undoes m20261202_000001_schedules.sql.
DROP TRIGGER schedules_notify_sooner ON schedules;
DROP TRIGGER schedules_notify_insert ON schedules;
DROP FUNCTION amp_notify_schedules();
DROP TABLE schedulers;
DROP INDEX executions_schedule_active_idx;
DROP TABLE schedule_runs;
DROP INDEX schedules_pending_idx;
ALTER TABLE schedules
    DROP COLUMN carried_ticks,
    DROP COLUMN missed_total,
    DROP COLUMN buffered_for,
    DROP COLUMN paused_reason,
    DROP COLUMN consecutive_failures,
    DROP COLUMN pause_after_failures,
    DROP COLUMN catch_up_window_secs,
    DROP CONSTRAINT schedules_overlap_policy_check;
UPDATE schedules SET overlap_policy = 'skip' WHERE overlap_policy <> 'skip';
ALTER TABLE schedules ADD CONSTRAINT schedules_overlap_policy_check CHECK (overlap_policy IN ('skip', 'queue'));
