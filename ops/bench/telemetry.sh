#!/usr/bin/env bash
# What tracing costs: W5 (ops/bench/w5.sh, no peers) and 10,000 runs in flight on one worker
# (ops/bench/e2e.sh inflight), each with tracing off (OTEL_EXPORTER_OTLP_ENDPOINT unset) and
# on at sampling 1.0 (OTEL_TRACES_SAMPLER=always_on) exporting over OTLP/HTTP to a local sink
# (bench-receiver, which answers every POST 200 at once), interleaved: REPS pairs, the order
# within a pair alternating (off,on then on,off, …) so that drift in the machine's load falls
# on both sides alike.
#   REPS=5 ops/bench/telemetry.sh [w5|inflight|both]
# Results: results/w5-amp.jsonl and results/e2e.jsonl, labelled build=tracing-off|tracing-on
# with the same `session` (a timestamp); ops/bench/telemetry_summary.py prints the ratios.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$ROOT/ops/bench
cd "$ROOT"
REPS=${REPS:-5}
WHAT=${1:-both}
bash ops/services.sh >/dev/null
# BENCH_BIN_DIR=dir of prebuilt release binaries (with bench-receiver) skips the build.
[ -n "${BENCH_BIN_DIR:-}" ] || cargo build --release -p api -p worker -p scheduler -p migrations -p amc-sim -p bench --bins
BIN=${BENCH_BIN_DIR:-$ROOT/target/release}
SESSION=$(date -u +%FT%TZ)
SINK_LOG=$(mktemp)
"$BIN/bench-receiver" --addr 127.0.0.1:0 --threads 1 >"$SINK_LOG" 2>&1 &
SINK_PID=$!
trap 'kill "$SINK_PID" 2>/dev/null || true; rm -f "$SINK_LOG"' EXIT
for _ in $(seq 50); do grep -q listening "$SINK_LOG" && break; sleep 0.1; done
SINK=$(sed -n 's/^listening on //p' "$SINK_LOG")
[ -n "$SINK" ] || { echo "bench-receiver did not start" >&2; cat "$SINK_LOG" >&2; exit 1; }
echo "OTLP sink at $SINK"

one() { # one <w5|inflight> <off|on>
  local env=(BUILD_LABEL="tracing-$2")
  if [ "$2" = on ]; then
    env+=(OTEL_EXPORTER_OTLP_ENDPOINT="$SINK" OTEL_TRACES_SAMPLER=always_on)
  fi
  case $1 in
    w5) env "${env[@]}" REPS=1 W5_PEERS=none BIN_DIR="$BIN" bash "$HERE/w5.sh" ;;
    inflight) env "${env[@]}" BENCH_BIN_DIR="$BIN" bash "$HERE/e2e.sh" inflight ;;
  esac
}

for rep in $(seq "$REPS"); do
  if [ $((rep % 2)) -eq 1 ]; then order=(off on); else order=(on off); fi
  for mode in "${order[@]}"; do
    case $WHAT in
      w5 | both) echo "== rep $rep w5 tracing $mode"; one w5 "$mode" ;;
    esac
    case $WHAT in
      inflight | both) echo "== rep $rep inflight tracing $mode"; one inflight "$mode" ;;
    esac
  done
done
echo "spans received by the sink: $(curl -s "$SINK/count") requests"
python3 "$HERE/telemetry_summary.py" "$SESSION"
