#!/usr/bin/env bash
# W5 for RecomAMP: POST /api/v1/workflows/{id}/executions at 50 connections, logged in,
# beside pgbench running the same transaction with 50 clients and (unless W5_PEERS=none)
# the harness's W5 for FastAPI + Celery and fastify + BullMQ, all in one run.
#   REPS=3 ops/bench/w5.sh        → ops/bench/results/w5-amp.jsonl (+ the harness's w5.jsonl)
# API_BIN=path/to/api (and BUILD_LABEL) measures another build the same way, for
# interleaved comparisons; W5_PEERS=none leaves the peers out.
# Uses a scratch database amp_bench_w5 and Redis prefix bench_w5 (both removed afterwards).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$ROOT/ops/bench
PEERS=${PEERS_DIR:-$ROOT/../shared/peers}
PY=${BENCH_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/queue-peers/venv}/bin/python
OUT=$HERE/results
REPS=${REPS:-3}
DUR=${W5_DURATION:-15}
PG=${PGHOST:-127.0.0.1}
DB=amp_bench_w5
PREFIX=bench_w5
command -v wrk >/dev/null || { apt-get install -y wrk >/dev/null 2>&1 || { echo "w5.sh needs wrk (apt-get install wrk)" >&2; exit 1; }; }
cd "$ROOT"
bash ops/services.sh >/dev/null
# BIN_DIR=dir of prebuilt release binaries (api, migrate, amc-sim) skips the build.
[ -n "${BIN_DIR:-}" ] || cargo build --release -p api -p migrations -p amc-sim --bins
BIN=${BIN_DIR:-$ROOT/target/release}
API_BIN=${API_BIN:-$BIN/api}
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
export AMP_DATABASE_URL="postgres://postgres@$PG:5432/$DB?sslmode=${PGSSLMODE:-disable}" AMP_REDIS_PREFIX=$PREFIX RUST_LOG=${W5_RUST_LOG:-warn}
"$BIN/migrate" up >/dev/null
SIM_PORT=$(free_port); API_PORT=$(free_port)
AMP_SIM_ADDR=127.0.0.1:$SIM_PORT "$BIN/amc-sim" >/dev/null 2>&1 & pids+=($!)
export AMP_AMC_BASE_URL=http://127.0.0.1:$SIM_PORT AMP_LWA_TOKEN_URL=http://127.0.0.1:$SIM_PORT/auth/o2/token
# Each wrk thread logs in once per run: more logins than the default per-IP limit allows.
AMP_LOGIN_RATE_LIMIT_IP=1000/1m AMP_API_ADDR=127.0.0.1:$API_PORT "$API_BIN" >"${W5_API_LOG:-/dev/null}" 2>&1 & API_PID=$!; pids+=($API_PID)
API=http://127.0.0.1:$API_PORT
for _ in $(seq 100); do curl -sf "$API/healthz" >/dev/null && break; sleep 0.1; done

export W5_API=$API W5_EMAIL=bench@example.com W5_PASSWORD="correct horse battery"
j() { curl -sf -X "$1" "$API/api/v1$2" -H 'content-type: application/json' ${TOKEN:+-H "Authorization: Bearer $TOKEN"} -d "$3"; }
j POST /auth/register "{\"email\":\"$W5_EMAIL\",\"password\":\"$W5_PASSWORD\"}" >/dev/null
TOKEN=$(j POST /auth/login "{\"email\":\"$W5_EMAIL\",\"password\":\"$W5_PASSWORD\"}" | jq -r .access_token)
j PUT /amazon/connection '{"refresh_token":"Atzr|bench"}' >/dev/null
ACCOUNT=$(j POST /accounts '{"name":"Bench","entity_id":"ENTITY1A2B3C","marketplace_id":"ATVPDKIKX0DER","region":"NA"}' | jq -r .id)
INSTANCE=$(j POST /instances "{\"name\":\"bench\",\"account_id\":\"$ACCOUNT\",\"amc_instance_id\":\"amcbench\",\"max_concurrent_executions\":10}" | jq -r .id)
W5_WORKFLOW=$(j POST /workflows "{\"name\":\"w5\",\"instance_id\":\"$INSTANCE\",\"sql_query\":\"SELECT campaign, SUM(impressions) AS impressions FROM dsp_impressions WHERE advertiser = {{advertiser}} AND lookback = {{lookback_days}} GROUP BY campaign\",\"parameters\":{\"advertiser\":\"ENTITY1A2B3C\",\"lookback_days\":7}}" | jq -r .id)
export W5_WORKFLOW
USER_ID=$(psql -h "$PG" -U postgres -d "$DB" -Atc "SELECT id FROM users")
count() { psql -h "$PG" -U postgres -d "$DB" -Atc "SELECT count(*) FROM executions"; }
queued() { redis-cli xlen "$PREFIX:q:execution.submit" 2>/dev/null || echo 0; }
cpu_ticks() { local t=0 p; for p in "$@"; do t=$(( t + $(awk '{print $14+$15}' "/proc/$p/stat" 2>/dev/null || echo 0) )); done; echo $t; }
pg_pids() { pgrep -x postgres | tr '\n' ' '; }
HZ=$(getconf CLK_TCK)

mkdir -p "$OUT"
for rep in $(seq "$REPS"); do
  before=$(count)
  wrk -t2 -c50 -d3s -s "${W5_LUA:-$HERE/wrk/post_execution.lua}" "$API" >/dev/null
  warm=$(( $(count) - before ))
  load=$(cut -d' ' -f1 /proc/loadavg)
  PGP=$(pg_pids); t0=$(cpu_ticks "$API_PID"); p0=$(cpu_ticks $PGP); before=$(count)
  [ -n "${W5_PERF:-}" ] && { perf record $( [ "$W5_PERF" = dwarf ] && echo "--call-graph dwarf,16384 -F 199" || echo "-g -F 499") -p "$API_PID" -o /tmp/w5.perf.data -- sleep "$DUR" >/dev/null 2>&1 & }
  # bash's `time` gives wrk's own user+system CPU seconds: the load generator's share of the cores.
  res=$( { TIMEFORMAT='%U %S'; time wrk -t2 -c50 -d"${DUR}s" --latency -s "${W5_LUA:-$HERE/wrk/post_execution.lua}" "$API" | tail -1; } 2>/tmp/w5-wrk-time.$$)
  wrk_cpu=$(tail -1 /tmp/w5-wrk-time.$$ | awk -v d="$DUR" '{printf "%.2f", ($1+$2)/d}'); rm -f /tmp/w5-wrk-time.$$
  pg_cpu=$(awk -v a="$p0" -v b="$(cpu_ticks $PGP)" -v hz="$HZ" -v d="$DUR" 'BEGIN{printf "%.2f", (b-a)/hz/d}')
  written=$(( $(count) - before ))
  api_cpu=$(awk -v a="$t0" -v b="$(cpu_ticks "$API_PID")" -v hz="$HZ" -v d="$DUR" 'BEGIN{printf "%.2f", (b-a)/hz/d}')
  rss=$(awk '/VmHWM/{print $2/1024}' "/proc/$API_PID/status")
  pgb=$(PGSSLMODE=${PGSSLMODE:-disable} pgbench -h "$PG" -U postgres -n -f "$HERE/pg/create_execution.sql" -c 50 -j 2 -T "$DUR" \
        -D user_id="$USER_ID" -D workflow_id="$W5_WORKFLOW" -D instance_id="$INSTANCE" "$DB" 2>&1)
  tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$pgb")
  pg_lat=$(sed -n 's/^latency average = \([0-9.]*\).*/\1/p' <<<"$pgb")
  line=$(jq -c --argjson rep "$rep" --arg load "$load" --argjson warm "$warm" --argjson written "$written" \
     --argjson api_cores "$api_cpu" --argjson pg_cores "$pg_cpu" --argjson wrk_cores "$wrk_cpu" --argjson rss "$rss" --argjson tps "${tps:-0}" --argjson pglat "${pg_lat:-0}" \
     --argjson queued "$(queued)" --arg ts "$(date -u +%FT%TZ)" \
     --arg build "${BUILD_LABEL:-$(git rev-parse --short HEAD)}" \
     '{workload:"w5", peer:"amp", variant:"post-executions", build:$build, rep:$rep, ts:$ts, load1:($load|tonumber),
       wrk:"wrk -t2 -c50 -d'"$DUR"'s --latency -s '"${W5_LUA:-ops/bench/wrk/post_execution.lua}"'",
       metrics:(. + {rows_written:$written, warmup_rows:$warm, queued_jobs_total:$queued, api_cpu_cores:$api_cores, postgres_cpu_cores:$pg_cores, wrk_cpu_cores:$wrk_cores,
                    api_peak_rss_mb:$rss, pgbench_same_txn_tps:$tps, pgbench_latency_avg_ms:$pglat,
                    ratio_to_pgbench:(if $tps > 0 then (.rps / $tps) else null end)})}' <<<"$res")
  echo "$line" | tee -a "$OUT/w5-amp.jsonl"
done
if [ "${W5_PEERS:-celery,bullmq}" != none ]; then
  "$PY" "$PEERS/bench.py" w5 --peers-file "$PEERS/peers.json" --peers "${W5_PEERS:-celery,bullmq}" \
    --reps "$REPS" --max-wait "${MAX_WAIT:-45}" --out "$OUT"
fi
