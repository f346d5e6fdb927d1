-- Scratch schema for the pgbench write test (database bench_pg, dropped afterwards):
-- one run row plus two audit rows per transaction, the shape of one state transition.
CREATE TABLE bench_runs (
  id bigserial PRIMARY KEY,
  account_id int NOT NULL,
  state text NOT NULL,
  next_check_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  payload jsonb NOT NULL
);
CREATE INDEX ON bench_runs (account_id, state, created_at);
CREATE TABLE bench_audit (
  id bigserial PRIMARY KEY,
  run_id bigint NOT NULL REFERENCES bench_runs(id),
  from_state text,
  to_state text NOT NULL,
  at timestamptz NOT NULL DEFAULT now(),
  detail jsonb
);
CREATE INDEX ON bench_audit (run_id);
