#!/usr/bin/env python3
"""Celery beat's fire lag with N entries, for comparison with our scheduler
(BENCHMARKS.md § Schedules). Run with the peers' venv (../shared/peers/setup.sh):

  ~/.cache/queue-peers/venv/bin/python ops/bench/beat/beat_lag.py 1000 2000 5000 10000

Each entry is `crontab()` (every minute, the finest a crontab has), all due at the same
minute boundary as users' 06:00 schedules are. Beat runs in process (`celery.beat.Service`,
default PersistentScheduler, `max_interval` 1 s) and publishes to Redis DB 6 (flushed
before and after; nothing consumes the tasks). A task's lag is the instant beat publishes
it (`before_task_publish`, in beat's own process) minus its minute boundary. Each N runs
for two boundaries after a warm-up; results are appended to
ops/bench/results/beat.jsonl.
"""

import json
import os
import statistics
import sys
import threading
import time

import celery
import redis
from celery import Celery
from celery.beat import Service
from celery.schedules import crontab
from celery.signals import before_task_publish

BROKER = os.environ.get("BEAT_BROKER", "redis://127.0.0.1:6379/6")
OUT = os.path.join(os.path.dirname(__file__), "..", "results", "beat.jsonl")
lags = []


@before_task_publish.connect
def record(sender=None, **_):
    now = time.time()
    lags.append((int(now // 60) * 60, now - (now // 60) * 60))


def measure(n):
    redis.Redis.from_url(BROKER).flushdb()
    app = Celery("beatbench", broker=BROKER)
    app.conf.beat_schedule = {f"e{i}": {"task": "beatbench.noop", "schedule": crontab()} for i in range(n)}
    app.conf.beat_max_loop_interval = 1
    path = f"/tmp/beat-{n}-{os.getpid()}"
    service = Service(app=app, max_interval=1, schedule_filename=path)
    lags.clear()
    t = threading.Thread(target=service.start, daemon=True)
    t.start()
    # Two whole boundaries after the first one beat sees.
    first = (int(time.time()) // 60 + 1) * 60
    while time.time() < first + 2 * 60 + 50:
        time.sleep(1)
    service.stop()
    t.join(timeout=30)
    for suffix in ("", ".db", ".dat", ".dir", ".bak"):
        try:
            os.remove(path + suffix)
        except OSError:
            pass
    redis.Redis.from_url(BROKER).flushdb()
    boundaries = sorted({b for b, _ in lags if b > first})
    per = [sorted(l for b, l in lags if b == x) for x in boundaries]
    per = [p for p in per if len(p) >= n * 0.99]
    every = sorted(l for p in per for l in p)
    q = lambda p: every[min(len(every) - 1, int(p * len(every)))] if every else None
    rec = {"workload": "beat_lag", "entries": n, "celery": celery.__version__, "boundaries": len(per),
           "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "load1": os.getloadavg()[0],
           "metrics": {"sends": len(every), "lag_p50_ms": round(q(0.5) * 1000, 1) if every else None,
                       "lag_p99_ms": round(q(0.99) * 1000, 1) if every else None,
                       "lag_max_ms": round(every[-1] * 1000, 1) if every else None,
                       "median_of_boundary_max_ms": round(statistics.median(p[-1] for p in per) * 1000, 1) if per else None}}
    with open(OUT, "a") as f:
        f.write(json.dumps(rec) + "\n")
    print(json.dumps(rec), flush=True)


if __name__ == "__main__":
    for n in [int(a) for a in sys.argv[1:]] or [1000, 2000, 5000, 10000]:
        measure(n)
