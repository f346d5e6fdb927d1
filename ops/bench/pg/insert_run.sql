\set acct random(1, 100)
BEGIN;
INSERT INTO bench_runs (account_id, state, next_check_at, payload) VALUES (:acct, 'queued', now(), '{"sql": "SELECT 1", "window": "P1D"}') RETURNING id AS run_id \gset
INSERT INTO bench_audit (run_id, from_state, to_state, detail) VALUES (:run_id, NULL, 'queued', '{"by": "api"}');
INSERT INTO bench_audit (run_id, from_state, to_state, detail) VALUES (:run_id, 'queued', 'queued', '{"event": "created"}');
COMMIT;
