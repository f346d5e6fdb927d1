#!/usr/bin/env bash
# The login flood benchmark: 1,000 bad logins 100 at a time against the release API,
# from one client (the per-IP limit answers 429) and spread over 1,000 client addresses
# (only the bound on password hashes holds), REPS times each.
#   REPS=3 ops/bench/flood/run.sh   → ops/bench/results/login-flood.jsonl
# API_BIN=path/to/api measures another build of the API the same way.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
OUT=$ROOT/ops/bench/results
REPS=${REPS:-3}
PG=${PGHOST:-127.0.0.1}
DB=amp_bench_flood
PREFIX=bench_flood
cd "$ROOT"
bash ops/services.sh >/dev/null
# BIN_DIR=dir of prebuilt release binaries (api, migrate) skips the build.
[ -n "${BIN_DIR:-}" ] || cargo build --release -p api -p migrations --bins
BIN=${BIN_DIR:-$ROOT/target/release}
API_BIN=${API_BIN:-$BIN/api}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  psql -h "$PG" -U postgres -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
  redis-cli --scan --pattern "$PREFIX:*" | xargs -r redis-cli del >/dev/null || true
}
trap cleanup EXIT
export AMP_DATABASE_URL="postgres://postgres@$PG:5432/$DB" AMP_REDIS_PREFIX=$PREFIX RUST_LOG=error
mkdir -p "$OUT"
for rep in $(seq "$REPS"); do
  for mode in one-client spread; do
    cleanup; pid=
    "$BIN/migrate" up >/dev/null
    port=$(free_port)
    AMP_API_ADDR=127.0.0.1:$port AMP_TRUST_FORWARDED_FOR=true "$API_BIN" >/dev/null 2>&1 & pid=$!
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
    curl -sf -X POST "http://127.0.0.1:$port/api/v1/auth/register" -H 'content-type: application/json' \
      -d '{"email":"bench@example.com","password":"correct horse battery"}' >/dev/null
    sleep 1
    flag=; [ "$mode" = spread ] && flag=--spread
    line=$(python3 "$ROOT/ops/bench/flood/login_flood.py" --port "$port" --pid "$pid" $flag)
    jq -c --arg build "${BUILD_LABEL:-$(git rev-parse --short HEAD)}" --argjson rep "$rep" --arg mode "$mode" \
      --arg load "$(cut -d' ' -f1 /proc/loadavg)" --arg ts "$(date -u +%FT%TZ)" \
      '. + {build:$build, rep:$rep, mode:$mode, load1:($load|tonumber), ts:$ts}' <<<"$line" | tee -a "$OUT/login-flood.jsonl"
    kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
  done
done
