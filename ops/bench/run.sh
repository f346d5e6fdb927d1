#!/usr/bin/env bash
# Runs the peer harness (/work/shared/peers) against `amp` (this crate's binaries) and the
# peers, interleaved, writing raw JSONL to ops/bench/results/. Run from anywhere.
#   REPS=3 MAX_WAIT=45 [PEERS_LIST=celery,bullmq,amp] ops/bench/run.sh [w1 w3 w4 w2]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PEERS=${PEERS_DIR:-$ROOT/../shared/peers}
PY=${BENCH_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/queue-peers/venv}/bin/python
OUT=$ROOT/ops/bench/results
REPS=${REPS:-3}
MAX_WAIT=${MAX_WAIT:-45}
PL=${PEERS_LIST:-celery,bullmq,amp}
cd "$ROOT"   # {cwd} in peers.json = the workspace root
cargo build --release -p bench
B=("$PY" "$PEERS/bench.py")
COMMON=(--peers-file "$PEERS/peers.json,$ROOT/ops/bench/peers.json" --out "$OUT" --reps "$REPS" --max-wait "$MAX_WAIT")
V="celery:prefork,celery:gevent,bullmq:worker,amp:default"
mkdir -p "$OUT"
for w in "${@:-w1 w3 w4 w2}"; do
  for x in $w; do
    case $x in
      w1) "${B[@]}" w1 "${COMMON[@]}" --peers "$PL" ;;
      w2) "${B[@]}" w2 "${COMMON[@]}" --peers "$PL" --variants "$V" --concurrency 1,10,100 ;;
      w3) "${B[@]}" w3 "${COMMON[@]}" --peers "$PL" --variants "$V" --concurrency 10 ;;
      w4) "${B[@]}" w4 "${COMMON[@]}" --peers "$PL" --variants "$V" --concurrency 10 \
            --rate 500 --flush-ms 1000 --poll-ms 1000 ;;
      *) echo "unknown workload $x" >&2; exit 2 ;;
    esac
  done
done
"${B[@]}" versions --peers-file "$PEERS/peers.json,$ROOT/ops/bench/peers.json" > "$OUT/versions.json" || true
