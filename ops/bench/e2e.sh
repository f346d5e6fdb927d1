#!/usr/bin/env bash
# Builds the release binaries and runs the end-to-end benchmarks (ops/bench/e2e.py):
#   ops/bench/e2e.sh rate [--runs 2000 --instances 20]
#   ops/bench/e2e.sh inflight [--instances 1000 --per 10 --window 60]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
bash ops/services.sh >/dev/null
# BENCH_BIN_DIR=dir of another build's binaries skips the build.
[ -n "${BENCH_BIN_DIR:-}" ] || cargo build --release -p api -p worker -p scheduler -p migrations -p amc-sim --bins
exec python3 "$ROOT/ops/bench/e2e.py" "$@"
