#!/usr/bin/env python3
"""Collections at scale (release binaries, real Postgres and Redis, amc-sim), standard
library only.

  collections.py [--collections 1000 --accounts 10 --instances 10 --window 60]

1,000 collections of 52 weeks (52,000 windows) over 10 accounts x 10 instances (account
caps 100, instance caps 10, reserve 2), amc-sim runs of 2 s, one worker:
  - creation time (POST /collections, 16 clients);
  - the completion rate in steady state (windows succeeded over --window seconds, after
    a warm-up), against the lower of two bounds measured in the same run: what the caps
    allow (800 collection slots / the observed slot time of a window, and / 2 s), and the
    end-to-end rate of direct runs (e2e.py rate, zero-length runs, same binaries);
  - worker, scheduler and PostgreSQL CPU per window over that window.

Results are appended to ops/bench/results/collections.jsonl (and the direct-run rate to
e2e.jsonl). Run ops/bench/collections.sh, which builds first.
"""

import argparse
import concurrent.futures as cf
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import e2e  # noqa: E402

OUT = os.path.join(e2e.ROOT, "ops", "bench", "results", "collections.jsonl")
SQL = ("SELECT campaign, SUM(impressions) AS impressions FROM dsp_impressions "
       "WHERE advertiser = {{advertiser}} AND day >= '{{window_start}}' GROUP BY campaign")


def direct_rate():
    """The end-to-end rate of direct runs, by e2e.py rate on the same binaries."""
    out = subprocess.run([sys.executable, os.path.join(os.path.dirname(__file__), "e2e.py"), "rate",
                          "--runs", "2000", "--instances", "20"], capture_output=True, text=True, check=True).stdout
    last = [line for line in out.splitlines() if '"runs_per_s"' in line]
    return float(last[-1].split(":")[1].strip().rstrip(","))


def setup(s, accounts, per_account):
    api = e2e.Api(s.api_url)
    body = {"email": "coll@example.com", "password": e2e.PASSWORD}
    api.call("POST", "/auth/register", body)
    api.token = api.call("POST", "/auth/login", body)["access_token"]
    api.call("PUT", "/amazon/connection", {"refresh_token": "Atzr|coll"})

    def account(a):
        acc = api.call("POST", "/accounts", {"name": f"A{a}", "entity_id": f"ENTITY{a:04d}", "marketplace_id": "ATVPDKIKX0DER",
                                             "region": "NA", "max_concurrent_executions": 100})["id"]
        out = []
        for i in range(per_account):
            inst = api.call("POST", "/instances", {"name": f"i{a}-{i}", "account_id": acc,
                                                   "amc_instance_id": f"amccol{a:03d}{i:03d}",
                                                   "max_concurrent_executions": 10, "collection_reserve": 2})["id"]
            out.append(api.call("POST", "/workflows", {"name": f"w{a}-{i}", "instance_id": inst, "sql_query": SQL,
                                                       "parameters": {"advertiser": "Acme"}})["id"])
        return out

    with cf.ThreadPoolExecutor(10) as ex:
        workflows = [w for ws in ex.map(account, range(accounts)) for w in ws]
    return api, workflows


def succeeded():
    return int(e2e.psql("SELECT count(*) FROM collection_windows WHERE status = 'succeeded'"))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--collections", type=int, default=1000)
    p.add_argument("--accounts", type=int, default=10)
    p.add_argument("--instances", type=int, default=10)
    p.add_argument("--window", type=int, default=60)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--no-direct", action="store_true")
    a = p.parse_args()
    bound_direct = None if a.no_direct else direct_rate()
    s = e2e.System({"AMP_SIM_RUN_DURATION": "2s", "AMP_SIM_MAX_RUNNING": "10", "AMP_POLL_MIN": "2s",
                    "AMP_POLL_MAX": "4s", "AMP_ENV": "development"})
    try:
        api, workflows = setup(s, a.accounts, a.instances)
        per = a.collections // len(workflows)
        jobs = [wf for wf in workflows for _ in range(per)]
        l0 = e2e.load1()
        t0 = time.time()
        with cf.ThreadPoolExecutor(16) as ex:
            list(ex.map(lambda wf: api.call("POST", "/collections", {"workflow_id": wf, "max_concurrency": 2}), jobs))
        created_s = time.time() - t0
        windows = int(e2e.psql("SELECT count(*) FROM collection_windows"))
        time.sleep(a.warmup)
        pids = s.pids()
        before = {k: e2e.cpu_ticks(v) for k, v in pids.items()}
        n0, w0 = succeeded(), time.time()
        time.sleep(a.window)
        n1, w1 = succeeded(), time.time()
        cpu = {k: (e2e.cpu_ticks(v) - before[k]) / e2e.HZ for k, v in pids.items()}
        rate = (n1 - n0) / (w1 - w0)
        # The slot time a window holds at AMC (submitting to fetching), observed.
        slot = float(e2e.psql("SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM fetching_at - submitting_at)) "
                              "FROM executions WHERE fetching_at IS NOT NULL"))
        slots = len(workflows) * (10 - 2)
        bounds = {"caps_at_2s": slots / 2.0, "caps_at_observed_slot": round(slots / slot, 1),
                  "direct_runs_per_s": bound_direct}
        lower = min(v for v in [slots / 2.0, bound_direct] if v)
        per_window = {k: round(v * 1000 / max(1, n1 - n0), 3) for k, v in cpu.items() if k in ("worker", "scheduler", "postgres", "api")}
        e2e.OUT = OUT
        e2e.emit({"workload": "collections", "collections": len(jobs), "windows": windows, "load1_before": l0,
                  "metrics": {"created_s": round(created_s, 2), "windows_per_s": round(rate, 1),
                              "slot_s_p50": round(slot, 2), "bounds": bounds,
                              "ratio_to_lower_bound": round(rate / lower, 3),
                              "cpu_ms_per_window": per_window,
                              "window_s": a.window, "warmup_s": a.warmup}})
    finally:
        s.stop()


if __name__ == "__main__":
    main()
