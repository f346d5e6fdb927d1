#!/usr/bin/env bash
# GET /api/v1/executions at 1,000,000 runs: p50/p99 of a limit=50 page for each CONTRACT
# filter (1,000 requests each, one connection, each request the next page of the last),
# and the plan of each page's query (EXPLAIN ANALYZE, generic plan as the API's prepared
# statements get). Release binaries; a scratch database amp_bench_list and Redis prefix
# bench_list (both removed afterwards). No worker runs: the rows stand still.
#   ops/bench/executions_list.sh   → ops/bench/results/executions_list.jsonl (+ plans in
#                                    ops/bench/results/executions_list_explain.txt)
# ROWS (default 1000000), REQUESTS (default 1000) and OUT (a results folder) change the
# sizes and where results go; BIN_DIR=dir of
# prebuilt release binaries (api, migrate, amc-sim) skips the build.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$ROOT/ops/bench
PG=${PGHOST:-127.0.0.1}
DB=amp_bench_list
PREFIX=bench_list
cd "$ROOT"
bash ops/services.sh >/dev/null
[ -n "${BIN_DIR:-}" ] || cargo build --release -p api -p migrations -p amc-sim --bins
BIN=${BIN_DIR:-$ROOT/target/release}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pids=()
cleanup() {
  kill -TERM "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
  psql -h "$PG" -U postgres -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
  redis-cli --scan --pattern "$PREFIX:*" | xargs -r redis-cli del >/dev/null || true
}
trap cleanup EXIT
psql -h "$PG" -U postgres -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
export AMP_DATABASE_URL="postgres://postgres@$PG:5432/$DB?sslmode=${PGSSLMODE:-disable}" AMP_REDIS_PREFIX=$PREFIX RUST_LOG=warn
"$BIN/migrate" up >/dev/null
SIM_PORT=$(free_port); API_PORT=$(free_port)
AMP_SIM_ADDR=127.0.0.1:$SIM_PORT "$BIN/amc-sim" >/dev/null 2>&1 & pids+=($!)
export AMP_AMC_BASE_URL=http://127.0.0.1:$SIM_PORT AMP_LWA_TOKEN_URL=http://127.0.0.1:$SIM_PORT/auth/o2/token
AMP_LOGIN_RATE_LIMIT_IP=1000/1m AMP_API_ADDR=127.0.0.1:$API_PORT "$BIN/api" >/dev/null 2>&1 & pids+=($!)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$API_PORT/healthz" >/dev/null && break; sleep 0.1; done
python3 "$HERE/executions_list.py" --api "http://127.0.0.1:$API_PORT" --db "$DB" --pg "$PG" \
  --rows "${ROWS:-1000000}" --requests "${REQUESTS:-1000}" --out "${OUT:-$HERE/results}" \
  --build "${BUILD_LABEL:-$(git rev-parse --short HEAD)}"
