#!/usr/bin/env python3
"""Schedules at scale (release binaries, real Postgres and Redis, amc-sim), standard
library only.

  schedules.py spread [--total 100000 --due 10000 --replicas 1]
      --due schedules fire once within the same minute, spread over its seconds; the
      rest are not due for months. No worker: only the scheduler's work is measured.
  schedules.py burst [--total 100000 --due 10000 --replicas 1] [--worker]
      --due schedules all fire at the same instant (the 06:00 burst). With --worker, one
      worker process and caps that admit every run: the time until amc-sim has received
      all of them.

Each fire's lag is `schedule_runs.fired_at − scheduled_for` (`fired_at` is written by the
last statement before the fire's commit). Also measured: scheduler and PostgreSQL CPU per
fire over the firing minute, and with nothing due the transactions each scheduler makes
(`pg_stat_database.xact_commit` over 60 s with only the schedulers connected).

Results are appended to ops/bench/results/schedules.jsonl. Scratch database
amp_bench_sched and Redis prefix bench_sched are removed afterwards. Run
ops/bench/schedules.sh, which builds first.
"""

import argparse
import concurrent.futures as cf
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
import e2e  # noqa: E402  (the shared helpers)

DB = "amp_bench_sched"
PREFIX = "bench_sched"
OUT = os.path.join(e2e.ROOT, "ops", "bench", "results", "schedules.jsonl")
BIN = e2e.BIN
INSTANCES = 100
SQL = ("SELECT campaign, SUM(impressions) AS impressions FROM dsp_impressions "
       "WHERE advertiser = {{advertiser}} GROUP BY campaign")


def psql(sql):
    return e2e.psql(sql, db=DB)


class System:
    def __init__(self, replicas, worker, env):
        e2e.psql(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)", db="postgres")
        e2e.psql(f"CREATE DATABASE {DB}", db="postgres")
        sim_port, api_port = e2e.free_port(), e2e.free_port()
        self.env = dict(os.environ, RUST_LOG=os.environ.get("BENCH_LOG", "warn"),
                        AMP_DATABASE_URL=f"postgres://postgres@{e2e.PG}:5432/{DB}?sslmode=disable",
                        AMP_REDIS_PREFIX=PREFIX, AMP_SIM_ADDR=f"127.0.0.1:{sim_port}",
                        AMP_API_ADDR=f"127.0.0.1:{api_port}", AMP_AMC_BASE_URL=f"http://127.0.0.1:{sim_port}",
                        AMP_LWA_TOKEN_URL=f"http://127.0.0.1:{sim_port}/auth/o2/token",
                        AMP_RESULTS_URL=f"/tmp/{DB}-results", AMP_ENV="development", **env)
        self.sim_url = f"http://127.0.0.1:{sim_port}"
        subprocess.run([f"{BIN}/migrate", "up"], env=self.env, check=True, capture_output=True)
        self.procs = {}
        names = ["amc-sim", "api"] + (["worker"] if worker else []) + [f"scheduler-{i}" for i in range(replicas)]
        for name in names:
            binary = name.split("-")[0] if name.startswith("scheduler") else name
            self.procs[name] = e2e.spawn(binary, name, self.env, DB)
        self.api_url = f"http://127.0.0.1:{api_port}"
        e2e.wait_healthy(self.api_url)

    def pids(self, prefix):
        return [p.pid for k, p in self.procs.items() if k.startswith(prefix)]

    def stop_proc(self, name):
        p = self.procs.pop(name)
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=40)

    def stop(self):
        for name in list(self.procs):
            try:
                self.stop_proc(name)
            except subprocess.TimeoutExpired:
                pass
        e2e.psql(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)", db="postgres")
        keys = e2e.redis("--scan", "--pattern", f"{PREFIX}:*").split()
        for i in range(0, len(keys), 500):
            e2e.redis("del", *keys[i:i + 500])


def setup(s, cap):
    api = e2e.Api(s.api_url)
    body = {"email": "sched@example.com", "password": e2e.PASSWORD}
    api.call("POST", "/auth/register", body)
    api.token = api.call("POST", "/auth/login", body)["access_token"]
    api.call("PUT", "/amazon/connection", {"refresh_token": "Atzr|sched"})
    account = api.call("POST", "/accounts", {"name": "S", "entity_id": "ENTITY1SCHED", "marketplace_id": "ATVPDKIKX0DER",
                                             "region": "NA", "max_concurrent_executions": min(10_000, cap * INSTANCES)})["id"]

    def one(i):
        inst = api.call("POST", "/instances", {"name": f"i{i}", "account_id": account, "amc_instance_id": f"amcsch{i:05d}",
                                               "max_concurrent_executions": cap})["id"]
        return api.call("POST", "/workflows", {"name": f"w{i}", "instance_id": inst, "sql_query": SQL,
                                               "parameters": {"advertiser": "Acme"}})["id"]

    with cf.ThreadPoolExecutor(8) as ex:
        list(ex.map(one, range(INSTANCES)))


def insert_schedules(total, due, t0, spread):
    """`total - due` schedules due next year; `due` ones due at t0 (+ i % 60 s if spread),
    each with a daily 6-field rule matching its instant."""
    user = psql("SELECT id FROM users LIMIT 1")
    t0s = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0))
    offset = "(g % 60)" if spread else "0"
    common = "(SELECT array_agg(id ORDER BY id) AS wfs FROM workflows) AS w"
    psql(f"""
      INSERT INTO schedules (id, user_id, workflow_id, name, cron, time_zone, time_window_rule, parameters, enabled,
                             overlap_policy, catch_up_policy, next_run_at)
      SELECT gen_random_uuid(), '{user}', wfs[1 + g % array_length(wfs, 1)], 'idle ' || g, '0 0 1 1 *', 'UTC',
             '{{"kind":"previous_day","lag_days":0}}', '{{}}', true, 'allow_all', 'latest',
             date_trunc('year', now()) + interval '1 year'
      FROM generate_series(1, {total - due}) g, {common}""")
    psql(f"""
      INSERT INTO schedules (id, user_id, workflow_id, name, cron, time_zone, time_window_rule, parameters, enabled,
                             overlap_policy, catch_up_policy, next_run_at)
      SELECT gen_random_uuid(), '{user}', wfs[1 + g % array_length(wfs, 1)], 'due ' || g,
             to_char(t, 'FMSS FMMI FMHH24') || ' * * *', 'UTC',
             '{{"kind":"previous_day","lag_days":0}}', '{{}}', true, 'allow_all', 'latest', t
      FROM generate_series(1, {due}) g, {common},
           LATERAL (SELECT '{t0s}'::timestamptz + make_interval(secs => {offset}) AS t) x""")
    psql("ANALYZE schedules")


def lags():
    out = psql("SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY l), percentile_cont(0.99) WITHIN GROUP (ORDER BY l), "
               "max(l), count(*) FROM (SELECT extract(epoch FROM fired_at - scheduled_for) AS l FROM schedule_runs "
               "WHERE outcome = 'started') q")
    p50, p99, mx, n = out.split("|")
    return {"fires": int(n), "lag_p50_ms": round(float(p50) * 1000, 1), "lag_p99_ms": round(float(p99) * 1000, 1),
            "lag_max_ms": round(float(mx) * 1000, 1)}


def sim_creates(s):
    with urllib.request.urlopen(s.sim_url + "/sim/admin/stats", timeout=30) as r:
        return json.loads(r.read())["creates"]


def idle_transactions(s, seconds):
    """Transactions committed on the database per scheduler per interval with only the
    schedulers connected (the API and the worker stopped)."""
    for name in [n for n in s.procs if not n.startswith("scheduler")]:
        if name != "amc-sim":
            s.stop_proc(name)
    time.sleep(3)
    q = f"SELECT xact_commit FROM pg_stat_database WHERE datname = '{DB}'"
    a = int(psql(q))
    time.sleep(seconds)
    b = int(psql(q))
    # The two reads are transactions of their own.
    return b - a - 1


def run(a, spread):
    interval = float(a.reconcile.rstrip("s"))
    s = System(a.replicas, a.worker, {"AMP_RECONCILE_INTERVAL": a.reconcile, "AMP_SIM_RUN_DURATION": "1h",
                                      "AMP_SIM_MAX_RUNNING": "1000", "AMP_POLL_MIN": "15s", "AMP_POLL_MAX": "15s"})
    try:
        setup(s, a.due // INSTANCES + 10)
        # Due a whole minute after the insert, so the insert's own work is over.
        t0 = (int(time.time()) // 60 + 2) * 60
        insert_schedules(a.total, a.due, t0, spread)
        while time.time() < t0 - 2:
            time.sleep(0.2)
        sched, pg = s.pids("scheduler"), e2e.pids_named("postgres")
        c0 = {"scheduler": e2e.cpu_ticks(sched), "postgres": e2e.cpu_ticks(pg)}
        l0 = e2e.load1()
        end = t0 + (60 if spread else 0) + 5
        submitted_at = None
        while time.time() < end or (a.worker and submitted_at is None and time.time() < t0 + 300):
            if a.worker and submitted_at is None and sim_creates(s) >= a.due:
                submitted_at = time.time()
            time.sleep(0.1)
        fired = lags()
        cpu = {k: (e2e.cpu_ticks(sched if k == "scheduler" else pg) - v) / e2e.HZ for k, v in c0.items()}
        rec = {"workload": "spread" if spread else "burst", "total": a.total, "due": a.due, "replicas": a.replicas,
               "worker": a.worker, "reconcile_interval": a.reconcile, "load1_before": l0,
               "metrics": {**fired,
                           "scheduler_cpu_ms_per_fire": round(cpu["scheduler"] * 1000 / max(1, fired["fires"]), 3),
                           "postgres_cpu_ms_per_fire": round(cpu["postgres"] * 1000 / max(1, fired["fires"]), 3)}}
        if a.worker:
            rec["metrics"]["all_submitted_s"] = round(submitted_at - t0, 2) if submitted_at else None
            # Where the time went: when the last run was created, admitted and running,
            # and the median run's wait at each stage.
            row = psql(f"""
              SELECT round(extract(epoch FROM max(created_at)) - {t0}, 2), round(extract(epoch FROM max(submitting_at)) - {t0}, 2),
                     round(extract(epoch FROM max(running_at)) - {t0}, 2),
                     round(extract(epoch FROM percentile_cont(0.5) WITHIN GROUP (ORDER BY submitting_at - created_at))::numeric, 3),
                     round(extract(epoch FROM percentile_cont(0.5) WITHIN GROUP (ORDER BY running_at - submitting_at))::numeric, 3)
              FROM executions""").split("|")
            keys = ["last_created_s", "last_admitted_s", "last_running_s", "queued_p50_s", "submitting_p50_s"]
            rec["metrics"].update({k: float(v) if v else None for k, v in zip(keys, row)})
        idle = idle_transactions(s, a.idle)
        rec["metrics"]["idle_transactions_per_replica_per_interval"] = round(idle / a.replicas / (a.idle / interval), 2)
        rec["metrics"]["idle_window_s"] = a.idle
        e2e.OUT = OUT
        e2e.emit(rec)
    finally:
        s.stop()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("workload", choices=["spread", "burst"])
    p.add_argument("--total", type=int, default=100_000)
    p.add_argument("--due", type=int, default=10_000)
    p.add_argument("--replicas", type=int, default=1)
    p.add_argument("--worker", action="store_true")
    p.add_argument("--reconcile", default="5s")
    p.add_argument("--idle", type=int, default=60)
    a = p.parse_args()
    run(a, a.workload == "spread")


if __name__ == "__main__":
    main()
