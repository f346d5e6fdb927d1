#!/usr/bin/env bash
# Builds the release binaries and runs the schedule benchmarks (ops/bench/schedules.py):
#   ops/bench/schedules.sh spread [--replicas 3]
#   ops/bench/schedules.sh burst [--replicas 3] [--worker]
# BENCH_BIN_DIR=dir of another build's binaries skips the build.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
bash ops/services.sh >/dev/null
[ -n "${BENCH_BIN_DIR:-}" ] || cargo build --release -p api -p worker -p scheduler -p migrations -p amc-sim --bins
exec python3 "$ROOT/ops/bench/schedules.py" "$@"
