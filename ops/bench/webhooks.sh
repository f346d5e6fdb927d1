#!/usr/bin/env bash
# Builds the release binaries (with ops/bench's bench-receiver) and runs the webhook
# delivery benchmark (ops/bench/webhooks.py):
#   ops/bench/webhooks.sh run [--reps 3 --n 20000 --clients 8,32,b8 --celery prefork:2,gevent:50]
#   ops/bench/webhooks.sh trace [--rate 1000 --seconds 30]
# BENCH_BIN_DIR=dir of another build's binaries skips the build (it must hold
# bench-receiver too). The Celery loop needs the peers' venv (../shared/peers/setup.sh;
# BENCH_VENV elsewhere) and a Redis DB no one else uses (WEBHOOK_CELERY_REDIS, default
# redis://127.0.0.1:6379/7, flushed before and after).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
bash ops/services.sh >/dev/null
[ -n "${BENCH_BIN_DIR:-}" ] || cargo build --release -p api -p worker -p scheduler -p migrations -p amc-sim -p bench --bins
exec python3 "$ROOT/ops/bench/webhooks.py" "$@"
