#!/usr/bin/env python3
"""End-to-end benchmarks of the whole system (release binaries, real Postgres and Redis,
amc-sim as AMC), standard library only.

  e2e.py inflight [--instances 1000 --per 10 --window 60] [--worker-threads N]
      One worker process tracks instances × per AMC runs that stay RUNNING in amc-sim
      (AMP_SIM_RUN_DURATION=1h), polled every 15 s (AMP_POLL_MIN = AMP_POLL_MAX = 15s).
      Once every run is `running`, CPU (cores) and memory of the worker, amc-sim, api,
      scheduler, Postgres (all its processes) and Redis are sampled over --window seconds.
  e2e.py rate [--runs 2000 --instances 20] [--worker-threads N]
      Zero-length amc-sim runs (AMP_SIM_RUN_DURATION=0s): runs/s from the first POST to
      the last `succeeded`, the time each phase took (created → submitting → running →
      fetching → succeeded; medians and p99 from the rows' own timestamps) and CPU seconds
      per run of each process.

Results are appended to ops/bench/results/e2e.jsonl. Scratch database amp_bench_e2e and
Redis prefix bench_e2e are removed afterwards. Run ops/bench/e2e.sh, which builds first.
"""

import argparse
import concurrent.futures as cf
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
# BENCH_BIN_DIR runs another build's binaries (BUILD_LABEL names it in the results).
BIN = os.environ.get("BENCH_BIN_DIR") or os.path.join(ROOT, "target", "release")
OUT = os.path.join(ROOT, "ops", "bench", "results", "e2e.jsonl")
PG = os.environ.get("PGHOST", "127.0.0.1")
DB = "amp_bench_e2e"
PREFIX = "bench_e2e"
HZ = os.sysconf("SC_CLK_TCK")
PASSWORD = "correct horse battery"
SQL = ("SELECT campaign, SUM(impressions) AS impressions FROM dsp_impressions "
       "WHERE advertiser = {{advertiser}} GROUP BY campaign")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def psql(sql, db=DB):
    return subprocess.run(["psql", "-h", PG, "-U", "postgres", "-d", db, "-Atqc", sql],
                          check=True, capture_output=True, text=True).stdout.strip()


def redis(*args):
    return subprocess.run(["redis-cli", *args], check=True, capture_output=True, text=True).stdout


def pids_named(name):
    out = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open(f"/proc/{p}/comm") as f:
                    if f.read().strip() == name:
                        out.append(int(p))
            except OSError:
                pass
    return out


def cpu_ticks(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime + stime
        except OSError:
            pass
    return total


def status_kb(pid, key):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class Api:
    def __init__(self, base):
        self.base = base + "/api/v1"
        self.token = None

    def call(self, method, path, body=None, expect=(200, 201, 202)):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("content-type", "application/json")
        if self.token:
            req.add_header("authorization", "Bearer " + self.token)
        for attempt in range(5):
            try:
                with urllib.request.urlopen(req, timeout=30) as r:
                    if r.status not in expect:
                        raise RuntimeError(f"{method} {path}: {r.status}")
                    return json.loads(r.read() or b"null")
            except urllib.error.HTTPError as e:
                raise RuntimeError(f"{method} {path}: {e.code} {e.read()[:300]!r}") from e
            except (urllib.error.URLError, ConnectionError):
                if attempt == 4:
                    raise
                time.sleep(0.2)


def spawn(binary, name, env, db):
    """Starts a release binary, its output in /tmp/{db}-{name}.log."""
    log = open(f"/tmp/{db}-{name}.log", "w")
    return subprocess.Popen([f"{BIN}/{binary}"], env=env, stdout=log, stderr=log)


def wait_healthy(base, tries=100):
    for _ in range(tries):
        try:
            urllib.request.urlopen(base + "/healthz", timeout=1)
            return
        except OSError:
            time.sleep(0.1)


class System:
    """The release binaries on a scratch database and Redis prefix."""

    def __init__(self, env):
        self.procs = {}
        psql(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)", db="postgres")
        psql(f"CREATE DATABASE {DB}", db="postgres")
        sim_port, api_port = free_port(), free_port()
        self.env = dict(os.environ, RUST_LOG=os.environ.get("E2E_LOG", "warn"),
                        AMP_DATABASE_URL=f"postgres://postgres@{PG}:5432/{DB}?sslmode={os.environ.get('PGSSLMODE', 'disable')}",
                        AMP_REDIS_PREFIX=PREFIX,
                        AMP_SIM_ADDR=f"127.0.0.1:{sim_port}", AMP_API_ADDR=f"127.0.0.1:{api_port}",
                        AMP_AMC_BASE_URL=f"http://127.0.0.1:{sim_port}",
                        AMP_LWA_TOKEN_URL=f"http://127.0.0.1:{sim_port}/auth/o2/token",
                        AMP_WORKER_HEALTH_ADDR=f"127.0.0.1:{free_port()}",
                        AMP_RESULTS_URL=f"/tmp/{DB}-results", **env)
        subprocess.run([f"{BIN}/migrate", "up"], env=self.env, check=True, capture_output=True)
        for name in ("amc-sim", "api", "worker", "scheduler"):
            self.procs[name] = spawn(name, name, self.env, DB)
        self.api_url = f"http://127.0.0.1:{api_port}"
        wait_healthy(self.api_url)

    def pids(self):
        named = {k: [p.pid] for k, p in self.procs.items()}
        named["postgres"] = pids_named("postgres")
        named["redis"] = pids_named("redis-server")
        return named

    def stop(self):
        for p in self.procs.values():
            p.send_signal(signal.SIGTERM)
        for p in self.procs.values():
            try:
                p.wait(timeout=40)
            except subprocess.TimeoutExpired:
                p.kill()
        psql(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)", db="postgres")
        keys = redis("--scan", "--pattern", f"{PREFIX}:*").split()
        for i in range(0, len(keys), 500):
            redis("del", *keys[i:i + 500])
        subprocess.run(["rm", "-rf", f"/tmp/{DB}-results"], check=False)


def setup(sys_, instances, cap, account_cap):
    api = Api(sys_.api_url)
    api.call("POST", "/auth/register", {"email": "e2e@example.com", "password": PASSWORD})
    api.token = api.call("POST", "/auth/login", {"email": "e2e@example.com", "password": PASSWORD})["access_token"]
    api.call("PUT", "/amazon/connection", {"refresh_token": "Atzr|e2e"})
    account = api.call("POST", "/accounts", {"name": "E2E", "entity_id": "ENTITY1E2E", "marketplace_id": "ATVPDKIKX0DER",
                                             "region": "NA", "max_concurrent_executions": account_cap})["id"]

    def one(i):
        inst = api.call("POST", "/instances", {"name": f"i{i}", "account_id": account, "amc_instance_id": f"amce2e{i:05d}",
                                               "max_concurrent_executions": cap})["id"]
        return api.call("POST", "/workflows", {"name": f"w{i}", "instance_id": inst, "sql_query": SQL,
                                               "parameters": {"advertiser": "Acme"}})["id"]

    with cf.ThreadPoolExecutor(16) as ex:
        workflows = list(ex.map(one, range(instances)))
    return api, workflows


def post_runs(api, workflows, per):
    body = {"parameters": {"advertiser": "Acme"}, "time_window": {"start": "2026-01-01T00:00:00", "end": "2026-01-08T00:00:00"}}
    jobs = [wf for wf in workflows for _ in range(per)]
    with cf.ThreadPoolExecutor(32) as ex:
        list(ex.map(lambda wf: api.call("POST", f"/workflows/{wf}/executions", body), jobs))
    return len(jobs)


def counts():
    out = psql("SELECT status, count(*) FROM executions GROUP BY status")
    return {k: int(v) for k, v in (line.split("|") for line in out.splitlines() if line)}


def polls_added():
    """Jobs ever added to the poll queue's stream (XINFO STREAM entries-added): every
    status check passes through it once, whether pushed at once or promoted when due."""
    try:
        info = redis("xinfo", "stream", f"{PREFIX}:q:execution.poll").split("\n")
    except subprocess.CalledProcessError:
        return 0
    return int(info[info.index("entries-added") + 1])


def load1():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def emit(rec):
    rec["ts"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    rec["build"] = os.environ.get("BUILD_LABEL") or subprocess.run(
        ["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "a") as f:
        f.write(json.dumps(rec) + "\n")
    print(json.dumps(rec, indent=1))


def record_worker(pids):
    """With E2E_PERF set, profiles the worker into /tmp/e2e.perf.data (perf report -i ...);
    E2E_PERF=dwarf records call graphs from DWARF (release builds keep no frame pointers)."""
    mode = os.environ.get("E2E_PERF")
    if not mode:
        return None
    graph = ["--call-graph", "dwarf,16384", "-F", "199"] if mode == "dwarf" else ["-g", "-F", "499"]
    return subprocess.Popen(["perf", "record", *graph, "-p", str(pids["worker"][0]), "-o",
                             "/tmp/e2e.perf.data"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_recording(perf):
    if perf:
        perf.send_signal(signal.SIGINT)
        perf.wait()


def threads(a):
    return {"AMP_WORKER_THREADS": str(a.worker_threads)} if a.worker_threads else {}


def inflight(a):
    total = a.instances * a.per
    s = System({"AMP_SIM_RUN_DURATION": "1h", "AMP_SIM_MAX_RUNNING": str(a.per), "AMP_POLL_MIN": "15s",
                "AMP_POLL_MAX": "15s", "AMP_ENV": "development", **threads(a)})
    try:
        api, workflows = setup(s, a.instances, a.per, total)
        t0 = time.time()
        post_runs(api, workflows, a.per)
        posted = time.time() - t0
        while counts().get("running", 0) < total:
            if time.time() - t0 > 900:
                raise RuntimeError(f"not all running after 900 s: {counts()}")
            time.sleep(1)
        all_running = time.time() - t0
        time.sleep(20)  # past the first 15 s poll of the last run: steady state
        pids = s.pids()
        before = {k: cpu_ticks(v) for k, v in pids.items()}
        polls0, l0 = polls_added(), load1()
        rss_peak = 0
        perf = record_worker(pids)
        end = time.time() + a.window
        while time.time() < end:
            rss_peak = max(rss_peak, status_kb(pids["worker"][0], "VmRSS"))
            time.sleep(0.5)
        stop_recording(perf)
        cores = {k: round((cpu_ticks(v) - before[k]) / HZ / a.window, 4) for k, v in pids.items()}
        polls = polls_added() - polls0
        emit({"workload": "inflight", "instances": a.instances, "per_instance": a.per, "runs": total,
              "worker_threads": a.worker_threads or "one per core",
              "window_s": a.window, "load1_before": l0, "states_after": counts(),
              "metrics": {"posted_s": round(posted, 2), "all_running_s": round(all_running, 2),
                          "cores": cores, "polls_per_s": round(polls / a.window, 1),
                          "polls_needed_per_s": round(total / 15, 1),
                          "worker_rss_mb": round(rss_peak / 1024, 1),
                          "worker_hwm_mb": round(status_kb(pids["worker"][0], "VmHWM") / 1024, 1),
                          "amc_sim_rss_mb": round(status_kb(pids["amc-sim"][0], "VmRSS") / 1024, 1),
                          "redis_used_memory_mb": round(int(redis("info", "memory").split("used_memory:")[1].split()[0]) / 2**20, 1)}})
    finally:
        s.stop()


def pct(sql_expr, where="status = 'succeeded'"):
    out = psql(f"SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY {sql_expr}), "
               f"percentile_cont(0.99) WITHIN GROUP (ORDER BY {sql_expr}) FROM executions WHERE {where}")
    p50, p99 = out.split("|")
    return {"p50_ms": round(float(p50) * 1000, 1), "p99_ms": round(float(p99) * 1000, 1)}


def rate(a):
    s = System({"AMP_SIM_RUN_DURATION": "0s", "AMP_SIM_MAX_RUNNING": "1000", "AMP_POLL_MIN": a.poll,
                "AMP_POLL_MAX": "10s", "AMP_ENV": "development", **threads(a)})
    try:
        api, workflows = setup(s, a.instances, 1000, a.runs)
        per = max(1, a.runs // a.instances)
        pids = s.pids()
        before = {k: cpu_ticks(v) for k, v in pids.items()}
        l0 = load1()
        t0 = time.time()
        perf = record_worker(pids)
        n = post_runs(api, workflows, per)
        posted = time.time() - t0
        while True:
            c = counts()
            if sum(v for k, v in c.items() if k in ("succeeded", "failed", "cancelled")) >= n:
                break
            if time.time() - t0 > 900:
                raise RuntimeError(f"not all finished after 900 s: {c}")
            time.sleep(0.2)
        stop_recording(perf)
        span = float(psql(f"SELECT extract(epoch FROM max(completed_at)) - {t0} FROM executions"))
        cpu_s = {k: round((cpu_ticks(v) - before[k]) / HZ, 2) for k, v in pids.items()}
        ep = "extract(epoch FROM {} - {})"
        emit({"workload": "rate", "runs": n, "instances": a.instances, "poll_min": a.poll, "load1_before": l0,
              "worker_threads": a.worker_threads or "one per core",
              "states": counts(),
              "metrics": {"runs_per_s": round(n / span, 1), "span_s": round(span, 2), "posted_s": round(posted, 2),
                          "phases": {"created_to_submitting": pct(ep.format("submitting_at", "created_at")),
                                     "submitting_to_running": pct(ep.format("running_at", "submitting_at")),
                                     "running_to_fetching": pct(ep.format("fetching_at", "running_at")),
                                     "fetching_to_succeeded": pct(ep.format("completed_at", "fetching_at")),
                                     "created_to_succeeded": pct(ep.format("completed_at", "created_at"))},
                          "cpu_s": cpu_s,
                          "cpu_ms_per_run": {k: round(v * 1000 / n, 3) for k, v in cpu_s.items()}}})
    finally:
        s.stop()


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    i = sub.add_parser("inflight")
    i.add_argument("--instances", type=int, default=1000)
    i.add_argument("--per", type=int, default=10)
    i.add_argument("--window", type=int, default=60)
    r = sub.add_parser("rate")
    r.add_argument("--runs", type=int, default=2000)
    r.add_argument("--instances", type=int, default=20)
    r.add_argument("--poll", default="200ms", help="AMP_POLL_MIN: the first poll after a submit")
    for cmd in (i, r):
        cmd.add_argument("--worker-threads", type=int, default=0,
                         help="AMP_WORKER_THREADS of the worker (default: unset, one per core)")
    a = p.parse_args()
    {"inflight": inflight, "rate": rate}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
