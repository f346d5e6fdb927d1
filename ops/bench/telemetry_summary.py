#!/usr/bin/env python3
"""Ratios of tracing on to tracing off from ops/bench/telemetry.sh's runs (records labelled
build=tracing-off|tracing-on written at or after SESSION, an ISO timestamp):

  python3 ops/bench/telemetry_summary.py 2026-12-07T16:40:00Z

W5: requests/s and p99 latency. 10,000 in flight: the worker's and all processes' CPU
cores. Each rep's on/off ratio, then the median ratio (the issue's measure)."""

import json
import os
import statistics
import sys

RESULTS = os.path.join(os.path.dirname(__file__), "results")


def load(name, workload, since):
    out = {"tracing-off": [], "tracing-on": []}
    for line in open(os.path.join(RESULTS, name)):
        r = json.loads(line)
        if r.get("workload") == workload and r.get("build") in out and r.get("ts", "") >= since:
            out[r["build"]].append(r)
    return out


def pairs(runs):
    return list(zip(runs["tracing-off"], runs["tracing-on"]))


def show(title, runs, metrics):
    ps = pairs(runs)
    if not ps:
        print(f"{title}: no runs")
        return
    print(f"{title}: {len(ps)} pairs")
    for label, get in metrics:
        offs = [get(a) for a, _ in ps]
        ons = [get(b) for _, b in ps]
        ratios = [b / a if a else float("nan") for a, b in zip(offs, ons)]
        print(f"  {label}: off {[round(x, 4) for x in offs]} on {[round(x, 4) for x in ons]}")
        print(f"    on/off per rep {[round(x, 3) for x in ratios]}, median {statistics.median(ratios):.3f}")


def main():
    since = sys.argv[1] if len(sys.argv) > 1 else ""
    show("W5", load("w5-amp.jsonl", "w5", since), [
        ("requests/s", lambda r: r["metrics"]["rps"]),
        ("p99 ms", lambda r: r["metrics"]["p99_ms"]),
        ("api CPU cores", lambda r: r["metrics"]["api_cpu_cores"]),
    ])
    show("10,000 in flight", load("e2e.jsonl", "inflight", since), [
        ("worker CPU cores", lambda r: r["metrics"]["cores"]["worker"]),
        ("all processes' CPU cores", lambda r: sum(r["metrics"]["cores"].values())),
        ("worker RSS MB", lambda r: r["metrics"]["worker_rss_mb"]),
    ])


if __name__ == "__main__":
    main()
