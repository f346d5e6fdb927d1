#!/usr/bin/env python3
"""Webhook delivery benchmark (release binaries, real Postgres and Redis, a local Rust
receiver), standard library only; the Celery loop runs in the peers' venv.

  webhooks.py run [--reps 3 --n 20000 --rate 1000 --seconds 30 --batch 50
                   --clients 8,32,b8 --celery prefork:2,gevent:50 --endpoints 1]
      Per rep, after a load gate (load1 <= --max-load, at most --max-wait s), on one
      scratch database (amp_bench_webhooks) and Redis prefix (bench_webhooks), with one
      worker (AMP_WORKER_CONCURRENCY, default 64) and a receiver (bench-receiver):
      1. throughput (A): the events of --n deliveries inserted into `events` with one
         statement (the trigger writes one pending delivery per subscribed endpoint and
         NOTIFYs the workers); deliveries/s from the insert's commit to the last delivery
         recorded `delivered`; worker, PostgreSQL, Redis, receiver CPU per delivery;
      2. pgbench of the delivery's own transactions (ops/bench/pg/webhook_delivery.sql:
         claim, record, as common/src/webhook/delivery.rs) with the worker and the
         scheduler stopped, on --n pre-made pending deliveries per client count (bN in
         --clients: pg/webhook_delivery_batched.sql, the same work 50 at a time);
      3. throughput again (B), worker and scheduler restarted: the ratio to pgbench uses
         the mean of A and B, which bracket it in time;
      4. latency: events inserted at --rate/s for --seconds, --batch per statement
         (50 every 50 ms); latency = receiver arrival - the event's created_at (the
         database's clock, microseconds, joined on webhook-id), p50/p90/p99/max and the
         p99 of each 5 s; CPU per delivery over the paced window;
      5. the Celery + requests loop (celery_hooks/hooks.py): --n tasks queued first on
         WEBHOOK_CELERY_REDIS (DB 7, flushed before and after), then one worker per pool
         variant drains them to the same receiver; deliveries/s and CPU per delivery of
         the worker's process tree.
      Every phase checks that each delivery arrived once, signed, and was recorded
      delivered at its first attempt.
  webhooks.py trace [--rate 1000 --seconds 30 --batch 50]
      The latency run with a row trigger on webhook_deliveries that stamps each step
      (created, claimed, taken, recorded) with clock_timestamp(), and `redis-cli monitor`
      for each job's XADD: where an event's latency goes.

PGOPTIONS (e.g. "-c synchronous_commit=off", a diagnostic) is passed to every process,
psql and pgbench, and recorded. Results are appended to ops/bench/results/webhooks.jsonl.
Run ops/bench/webhooks.sh, which builds first (BENCH_BIN_DIR skips the build).
"""

import argparse
import base64
import json
import os
import re
import secrets
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
import e2e  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DB = "amp_bench_webhooks"
PREFIX = "bench_webhooks"
e2e.DB, e2e.PREFIX = DB, PREFIX  # System reads these globals
OUT = os.path.join(e2e.ROOT, "ops", "bench", "results", "webhooks.jsonl")
VENV = os.environ.get("BENCH_VENV") or os.path.expanduser("~/.cache/queue-peers/venv")
PG_BATCH = 50  # deliveries per script run of the batched pgbench variant
CELERY_REDIS = os.environ.get("WEBHOOK_CELERY_REDIS", "redis://127.0.0.1:6379/7")
EVENT = "collection.completed"
PG_ENV = dict(os.environ, PGSSLMODE=os.environ.get("PGSSLMODE", "disable"))


def psql(sql):
    return e2e.psql(sql, db=DB)


def redis_db(url):
    return url.rsplit("/", 1)[1] if url.count("/") >= 3 else "0"


def flush_celery_db():
    subprocess.run(["redis-cli", "-n", redis_db(CELERY_REDIS), "flushdb"], check=True, capture_output=True)


def pct(xs, p):
    if not xs:
        return None
    xs = sorted(xs)
    k = (len(xs) - 1) * p
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def dist(xs, nd=2):
    return {"n": len(xs), "p50": round(pct(xs, 0.5), nd), "p90": round(pct(xs, 0.9), nd),
            "p99": round(pct(xs, 0.99), nd), "max": round(max(xs), nd)} if xs else {"n": 0}


def children_of(pid):
    """pid and all its descendants."""
    kids = {}
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open(f"/proc/{p}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                kids.setdefault(ppid, []).append(int(p))
            except OSError:
                pass
    out, todo = [], [pid]
    while todo:
        x = todo.pop()
        out.append(x)
        todo.extend(kids.get(x, []))
    return out


class Receiver:
    """ops/bench/src/bin/bench-receiver.rs on a free port."""

    def __init__(self):
        self.proc = subprocess.Popen([f"{e2e.BIN}/bench-receiver", "--addr", "127.0.0.1:0"],
                                     stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        m = re.search(r"listening on (\S+)", line)
        if not m:
            raise RuntimeError(f"bench-receiver did not start: {line!r}")
        self.base = m.group(1)
        self.url = self.base + "/hook"

    def count(self):
        with urllib.request.urlopen(self.base + "/count", timeout=10) as r:
            return int(r.read())

    def records(self, clear=True):
        with urllib.request.urlopen(self.base + "/records" + ("?clear=1" if clear else ""), timeout=60) as r:
            rows = []
            for line in r.read().decode().splitlines():
                ns, wid, ts, signed = line.split("\t")
                rows.append((int(ns), wid, ts, signed == "1"))
            return rows

    def wait_for(self, n, timeout):
        t0 = time.time()
        while self.count() < n:
            if time.time() - t0 > timeout:
                raise RuntimeError(f"receiver has {self.count()} of {n} after {timeout} s")
            time.sleep(0.05)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def ticks_of(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except OSError:
        return None


def postgres_pids(part="all"):
    """Postgres processes that work for this benchmark: our database's backends (client
    and autovacuum: part "backends") and the server's background processes (WAL writer,
    checkpointer, ...: part "background"; they also serve other databases on a shared
    server), not other databases' client backends. Read from the process titles, so
    backends that connect during a phase (pgbench's) are found."""
    out = []
    for pid in e2e.pids_named("postgres"):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                title = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        ours = f" {DB} " in title or title.rstrip().endswith(f" {DB}")
        background = "(" not in title and not ours
        if (part in ("all", "backends") and ours) or (part in ("all", "background") and background):
            out.append(pid)
    return out


def pg_backends():
    return postgres_pids("backends")


def pg_background():
    return postgres_pids("background")


class Cpu(threading.Thread):
    """CPU seconds of named process groups from now to seconds(): each group is a list of
    pids or a function giving them; sampled every `interval` s, so processes that start during
    the window are counted from their start (and those that exit, up to their last
    sample)."""

    def __init__(self, groups, interval=0.2):
        super().__init__(daemon=True)
        self.groups = groups
        self.interval = interval
        self.first, self.last = {}, {}
        self.stop_ = threading.Event()
        self.sample(initial=True)
        self.start()

    def pids(self, g):
        v = self.groups[g]
        return v() if callable(v) else v

    def sample(self, initial=False):
        for g in self.groups:
            for pid in self.pids(g):
                t = ticks_of(pid)
                if t is None:
                    continue
                key = (g, pid)
                if key not in self.first:
                    self.first[key] = t if initial else 0
                self.last[key] = t

    def run(self):
        while not self.stop_.wait(self.interval):
            self.sample()

    def seconds(self):
        self.stop_.set()
        self.join()
        self.sample()
        out = {g: 0 for g in self.groups}
        for (g, pid), t in self.last.items():
            out[g] += t - self.first[(g, pid)]
        if "postgres_backends" in out:
            out["postgres"] = out["postgres_backends"] + out.get("postgres_background", 0)
        return {g: v / e2e.HZ for g, v in out.items()}


def groups(s, rcv):
    named = {k: [p.pid] for k, p in s.procs.items() if k in ("worker", "scheduler", "api")}
    named.update(postgres_backends=pg_backends, postgres_background=pg_background,
                 redis=e2e.pids_named("redis-server"), receiver=[rcv.proc.pid])
    return named


def insert_events_sql(user, n, tag):
    return (f"INSERT INTO events (user_id, event_type, subject_id, payload) SELECT '{user}', '{EVENT}', "
            f"gen_random_uuid(), jsonb_build_object('run', '{tag}', 'seq', g, 'status', 'completed', "
            f"'windows', 52, 'succeeded', 52) FROM generate_series(1, {n}) g")


def delivered_since(t0):
    return int(psql(f"SELECT count(*) FROM webhook_deliveries WHERE status = 'delivered' AND created_at >= to_timestamp({t0})"))


def wait_delivered(t0, n, timeout=900):
    start = time.time()
    while delivered_since(t0) < n:
        if time.time() - start > timeout:
            raise RuntimeError(f"{delivered_since(t0)} of {n} delivered after {timeout} s")
        time.sleep(0.05)


def check(t0, rows, n):
    """Every delivery of the phase delivered once, at the first attempt, signed."""
    states = dict(tuple(line.split("|")) for line in psql(
        f"SELECT status || '/' || attempts, count(*) FROM webhook_deliveries WHERE created_at >= to_timestamp({t0}) "
        "GROUP BY 1").splitlines())
    ids = [r[1] for r in rows]
    return {"states": {k: int(v) for k, v in states.items()}, "received": len(rows),
            "duplicates": len(ids) - len(set(ids)), "unsigned": sum(1 for r in rows if not r[3]),
            "ok": states == {"delivered/1": str(n)} and len(set(ids)) == n}


def per_delivery_ms(cpu, n):
    return {k: round(v * 1000 / n, 4) for k, v in cpu.items()}


def throughput(s, rcv, user, total, endpoints):
    """--n deliveries' events at once; deliveries/s from the insert's commit to the last
    one recorded `delivered`."""
    rcv.records(clear=True)
    n = total // endpoints
    l0 = e2e.load1()
    t0 = time.time()
    psql(insert_events_sql(user, n, "throughput"))
    t_commit = time.time()
    cpu = Cpu(groups(s, rcv))
    rcv.wait_for(total, 900)
    wait_delivered(t0, total)
    cpu_s = cpu.seconds()
    span_end = float(psql(f"SELECT extract(epoch FROM max(last_attempt_at)) FROM webhook_deliveries "
                          f"WHERE created_at >= to_timestamp({t0})"))
    rows = rcv.records(clear=True)
    arrivals = sorted(r[0] / 1e9 for r in rows)
    span = span_end - t_commit
    return {"deliveries": total, "events": n, "load1_before": l0, "insert_s": round(t_commit - t0, 3),
            "span_s": round(span, 3), "deliveries_per_s": round(total / span, 1),
            "receiver_rate": round((len(arrivals) - 1) / (arrivals[-1] - arrivals[0]), 1),
            "first_arrival_after_commit_ms": round((arrivals[0] - t_commit) * 1000, 1),
            "cpu_s": {k: round(v, 3) for k, v in cpu_s.items()},
            "cpu_ms_per_delivery": per_delivery_ms(cpu_s, total),
            "check": check(t0, rows, total)}


def paced_insert(user, rate, seconds, batch):
    """Inserts `batch` events every batch/rate seconds through one psql session; returns
    the largest lag behind schedule (ms)."""
    p = subprocess.Popen(["psql", "-h", e2e.PG, "-U", "postgres", "-d", DB, "-q", "-v", "ON_ERROR_STOP=1"],
                         stdin=subprocess.PIPE, text=True, env=PG_ENV)
    stmt = insert_events_sql(user, batch, "paced") + ";\n"
    interval = batch / rate
    steps = int(rate * seconds / batch)
    start = time.time() + 0.2
    lag = 0.0
    for i in range(steps):
        target = start + i * interval
        d = target - time.time()
        if d > 0:
            time.sleep(d)
        lag = max(lag, time.time() - target)
        p.stdin.write(stmt)
        p.stdin.flush()
    p.stdin.close()
    if p.wait() != 0:
        raise RuntimeError("paced psql failed")
    return steps * batch, round(lag * 1000, 2)


def latency_of(t0, rows):
    """ms from each event's created_at (database clock) to its arrival at the receiver,
    and the same from the body's `timestamp` (ms precision) as a check."""
    created = {}
    for line in psql(f"SELECT replace(id::text, '-', ''), extract(epoch FROM created_at) FROM events "
                     f"WHERE created_at >= to_timestamp({t0})").splitlines():
        eid, ep = line.split("|")
        created["msg_" + eid] = float(ep)
    lat, lat_body, slices = [], [], {}
    for ns, wid, ts, _ in rows:
        if wid in created:
            lat.append((ns / 1e9 - created[wid]) * 1000)
            slices.setdefault(int((created[wid] - t0) // 5) * 5, []).append(lat[-1])
        if ts:
            body_t = time.mktime(time.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone + int(ts[20:23]) / 1000
            lat_body.append((ns / 1e9 - body_t) * 1000)
    return lat, lat_body, {f"{k}s": round(pct(v, 0.99), 1) for k, v in sorted(slices.items())}


def latency(s, rcv, user, rate, seconds, batch, endpoints):
    rcv.records(clear=True)
    l0 = e2e.load1()
    cpu = Cpu(groups(s, rcv))
    t0 = time.time()
    n, lag = paced_insert(user, rate, seconds, batch)
    total = n * endpoints
    rcv.wait_for(total, 300)
    wait_delivered(t0, total)
    cpu_s = cpu.seconds()
    rows = rcv.records(clear=True)
    lat, lat_body, slices = latency_of(t0, rows)
    # After the arrival: the worker's answer read, then its record statement (now()).
    rec = psql(f"SELECT replace(d.event_id::text, '-', ''), extract(epoch FROM d.last_attempt_at) FROM webhook_deliveries d "
               f"WHERE d.created_at >= to_timestamp({t0})")
    recorded = {"msg_" + a: float(b) for a, b in (x.split("|") for x in rec.splitlines())}
    after = [(recorded[w] - ns / 1e9) * 1000 for ns, w, _, _ in rows if w in recorded]
    return {"events": n, "deliveries": total, "rate": rate, "seconds": seconds, "batch": batch,
            "load1_before": l0, "pacer_max_lag_ms": lag,
            "latency_ms": dist(lat), "p99_by_5s_ms": slices, "latency_from_body_timestamp_ms": dist(lat_body),
            "arrival_to_recorded_ms": dist(after),
            "cpu_s": {k: round(v, 3) for k, v in cpu_s.items()},
            "cpu_ms_per_delivery": per_delivery_ms(cpu_s, total),
            "check": check(t0, rows, total)}


def stop_procs(s, names):
    for name in names:
        p = s.procs[name]
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=40)
        except subprocess.TimeoutExpired:
            p.kill()


def start_procs(s, names):
    for name in names:
        s.procs[name] = e2e.spawn(name, name, s.env, DB)


def pgbench(s, user, n, clients, endpoints):
    """The delivery's own transactions with pgbench (the worker and scheduler stopped by
    the caller), then the leftovers removed."""
    psql("VACUUM ANALYZE webhook_deliveries, events, webhook_attempts, webhook_endpoints")
    out = {}
    for spec in clients:
        # "8": the per-delivery script (what the worker runs); "b8": the batched one.
        batched = spec.startswith("b")
        c = int(spec.lstrip("b"))
        b = PG_BATCH if batched else 1
        per = n // (c * b)
        count = per * c * b
        t_make = time.time()
        psql(insert_events_sql(user, -(-(count + c * b) // endpoints), f"pgbench-{spec}"))
        made_s = time.time() - t_make
        before = int(psql("SELECT count(*) FROM webhook_deliveries WHERE status = 'delivered'"))
        cpu = Cpu({"postgres_backends": pg_backends, "postgres_background": pg_background}, interval=0.1)
        l0 = e2e.load1()
        script = "webhook_delivery_batched.sql" if batched else "webhook_delivery.sql"
        r = subprocess.run(["pgbench", "-h", e2e.PG, "-U", "postgres", "-n", "-M", "prepared", "-c", str(c),
                            "-j", "2", "-r", "-t", str(per), "-D", f"batch={b}", "-f", os.path.join(HERE, "pg", script), DB],
                           capture_output=True, text=True, env=PG_ENV)
        cpu_s = cpu.seconds()
        if r.returncode != 0:
            raise RuntimeError(f"pgbench -c {c} ({script}): {r.stderr[-2000:]}")
        tps = float(re.search(r"tps = ([\d.]+) \(without initial connection time\)", r.stdout).group(1))
        lat = re.search(r"latency average = ([\d.]+) ms", r.stdout)
        # -r: each statement's average latency (ms), in script order.
        stmts = [float(x) for x in re.findall(r"^\s+([\d.]+)\s+\d+\s+(?:UPDATE|WITH)", r.stdout, re.M)]
        names = ("claim_and_take", "record") if batched else ("claim", "take", "record")
        done = int(psql("SELECT count(*) FROM webhook_deliveries WHERE status = 'delivered'")) - before
        out[f"b{c}" if batched else f"c{c}"] = {
            "clients": c, "script": script, "batch": b, "transactions": per * c, "deliveries": count,
            "tps": tps, "deliveries_per_s": round(tps * b, 1), "load1_before": l0,
            "latency_avg_ms": float(lat.group(1)) if lat else None,
            "statement_avg_ms": dict(zip(names, stmts)),
            "delivered_by_pgbench": done, "ok": done == count,
            "premade_s": round(made_s, 2),
            "cpu_ms_per_delivery": per_delivery_ms(cpu_s, count)}
    # The surplus pending deliveries would be the restarted worker's first work.
    psql("DELETE FROM webhook_deliveries WHERE status = 'pending'")
    psql("VACUUM ANALYZE webhook_deliveries, events, webhook_attempts, webhook_endpoints")
    return out


def celery(rcv, variant, n):
    """n Celery tasks queued, then one worker drains them to the receiver."""
    pool, conc = variant.split(":")
    here = os.path.join(HERE, "celery_hooks")
    env = dict(os.environ, WEBHOOK_CELERY_REDIS=CELERY_REDIS)
    flush_celery_db()
    rcv.records(clear=True)
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    q = subprocess.run([f"{VENV}/bin/python", "hooks.py", "produce", "--n", str(n), "--url", rcv.url,
                        "--secret", secret], cwd=here, env=env, capture_output=True, text=True)
    if q.returncode != 0:
        raise RuntimeError(f"celery produce: {q.stderr[-2000:]}")
    queued = json.loads(q.stdout.strip().splitlines()[-1])
    l0 = e2e.load1()
    log = open(f"/tmp/{DB}-celery-{pool}.log", "w")
    t_launch = time.time()
    w = subprocess.Popen([f"{VENV}/bin/celery", "-A", "hooks", "worker", "-P", pool, "-c", conc, "--loglevel", "WARNING"],
                         cwd=here, env=env, stdout=log, stderr=log)
    cpu = Cpu({"worker_tree": lambda: children_of(w.pid), "redis": e2e.pids_named("redis-server"),
               "receiver": [rcv.proc.pid]})
    try:
        deadline = time.time() + 1800
        while rcv.count() < n:
            if w.poll() is not None:
                raise RuntimeError(f"celery worker exited {w.returncode}; see /tmp/{DB}-celery-{pool}.log")
            if time.time() > deadline:
                raise RuntimeError(f"celery {variant}: {rcv.count()} of {n} after 1800 s")
            time.sleep(0.1)
        cpu_s = cpu.seconds()
    finally:
        w.send_signal(signal.SIGTERM)
        try:
            w.wait(timeout=30)
        except subprocess.TimeoutExpired:
            for pid in children_of(w.pid)[::-1]:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        flush_celery_db()
    rows = rcv.records(clear=True)
    arr = sorted(r[0] / 1e9 for r in rows)
    ids = [r[1] for r in rows]
    return {"variant": variant, "deliveries": n, "load1_before": l0, "produce_s": queued["seconds"],
            "deliveries_per_s": round((len(arr) - 1) / (arr[-1] - arr[0]), 1),
            "launch_to_last_s": round(arr[-1] - t_launch, 2), "startup_s": round(arr[0] - t_launch, 2),
            "cpu_s": {k: round(v, 2) for k, v in cpu_s.items()},
            "cpu_ms_per_delivery": per_delivery_ms(cpu_s, n),
            "check": {"received": len(rows), "duplicates": len(ids) - len(set(ids)),
                      "unsigned": sum(1 for r in rows if not r[3]), "ok": len(set(ids)) == n}}


def start_system(rcv, endpoints, extra_env=None):
    env = {"AMP_ENV": "development", "AMP_WEBHOOK_ALLOW_PRIVATE": "true", "AMP_SIM_RUN_DURATION": "0s",
           **(extra_env or {})}
    if os.environ.get("PGOPTIONS"):
        env["PGOPTIONS"] = os.environ["PGOPTIONS"]
    s = e2e.System(env)
    api = e2e.Api(s.api_url)
    body = {"email": "hooks@example.com", "password": e2e.PASSWORD}
    api.call("POST", "/auth/register", body)
    api.token = api.call("POST", "/auth/login", body)["access_token"]
    for _ in range(endpoints):
        api.call("POST", "/webhooks", {"url": rcv.url, "event_types": [EVENT]})
    user = psql("SELECT id FROM users WHERE email = 'hooks@example.com'")
    return s, user


def warm_up(rcv, user, endpoints):
    t0 = time.time()
    psql(insert_events_sql(user, 200, "warm-up"))
    rcv.wait_for(200 * endpoints, 120)
    wait_delivered(t0, 200 * endpoints)
    rcv.records(clear=True)


def emit(rec):
    e2e.OUT = OUT
    e2e.emit(rec)


def load_gate(max_load, max_wait):
    """Waits (polling every 5 s) until load1 <= max_load or max_wait s have passed, as the
    peer harness does; returns the seconds waited."""
    t0 = time.time()
    while e2e.load1() > max_load and time.time() - t0 < max_wait:
        time.sleep(5)
    return round(time.time() - t0, 1)


def run(a):
    """Per rep: ours (A), pgbench of the same transactions, ours again (B), the latency
    run, then the Celery loop; the ratios use the mean of A and B, which bracket pgbench."""
    clients = [c for c in a.clients.split(",") if c]
    variants = [v for v in a.celery.split(",") if v]
    for rep in range(a.reps):
        waited = load_gate(a.max_load, a.max_wait)
        rcv = Receiver()
        try:
            rec = {"workload": "webhooks", "rep": rep + 1, "of": a.reps, "endpoints": a.endpoints,
                   "pgoptions": os.environ.get("PGOPTIONS", ""), "load_gate_waited_s": waited,
                   "worker_concurrency": os.environ.get("AMP_WORKER_CONCURRENCY", "64 (default)")}
            s, user = start_system(rcv, a.endpoints)
            try:
                warm_up(rcv, user, a.endpoints)
                rec["amp"] = throughput(s, rcv, user, a.n, a.endpoints)
                if clients:
                    stop_procs(s, ("worker", "scheduler"))
                    rec["pgbench"] = pgbench(s, user, a.n, clients, a.endpoints)
                    start_procs(s, ("worker", "scheduler"))
                    warm_up(rcv, user, a.endpoints)
                    rec["amp_after"] = throughput(s, rcv, user, a.n, a.endpoints)
                    ours = statistics.mean([rec["amp"]["deliveries_per_s"], rec["amp_after"]["deliveries_per_s"]])
                    rec["amp_mean_deliveries_per_s"] = round(ours, 1)
                    rec["ratio_to_pgbench"] = {k: round(ours / v["deliveries_per_s"], 3)
                                               for k, v in rec["pgbench"].items()}
                if a.seconds > 0:
                    rec["latency"] = latency(s, rcv, user, a.rate, a.seconds, a.batch, a.endpoints)
            finally:
                s.stop()
            rec["celery"] = [celery(rcv, v, a.n) for v in variants]
            ours = rec.get("amp_mean_deliveries_per_s") or rec["amp"]["deliveries_per_s"]
            for c in rec["celery"]:
                rec.setdefault("ratio_to_celery", {})[c["variant"]] = round(ours / c["deliveries_per_s"], 1)
            emit(rec)
        finally:
            rcv.stop()


TRACE_SQL = """
CREATE UNLOGGED TABLE bench_trace (delivery_id uuid NOT NULL, step text NOT NULL,
    at timestamptz NOT NULL DEFAULT clock_timestamp(), lease timestamptz);
CREATE FUNCTION bench_trace() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO bench_trace (delivery_id, step) VALUES (NEW.id, 'created');
    ELSIF NEW.status IS DISTINCT FROM OLD.status THEN
        INSERT INTO bench_trace (delivery_id, step) VALUES (NEW.id, 'recorded');
    ELSIF NEW.next_attempt_at > clock_timestamp() + interval '10 seconds' THEN
        INSERT INTO bench_trace (delivery_id, step, lease) VALUES (NEW.id, 'taken', NEW.next_attempt_at);
    ELSE
        INSERT INTO bench_trace (delivery_id, step, lease) VALUES (NEW.id, 'claimed', NEW.next_attempt_at);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER bench_trace AFTER INSERT OR UPDATE ON webhook_deliveries
    FOR EACH ROW EXECUTE FUNCTION bench_trace();
"""


def monitor_xadds(path):
    """Enqueue times of webhook.deliver jobs by delivery id, from `redis-cli monitor`
    (its lines carry the server's clock in microseconds)."""
    out = {}
    uuid_re = re.compile(r'delivery_id\\?"\s*:\s*\\?"([0-9a-f-]{36})')
    with open(path, errors="replace") as f:
        for line in f:
            if '"XADD"' not in line or f"{PREFIX}:" not in line or "webhook.deliver" not in line:
                continue
            m = uuid_re.search(line)
            if m:
                out.setdefault(m.group(1), float(line.split(" ", 1)[0]))
    return out


def trace(a):
    """Where an event's latency goes, at --rate events/s. A row trigger on
    webhook_deliveries stamps each step with clock_timestamp() and `redis-cli monitor`
    gives each job's XADD; both add their own cost, so read the steps, not the total."""
    rcv = Receiver()
    mon = None
    try:
        s, user = start_system(rcv, 1)
        try:
            psql(TRACE_SQL)
            warm_up(rcv, user, 1)
            mon_path = f"/tmp/{DB}-monitor.txt"
            mon = subprocess.Popen(["redis-cli", "monitor"], stdout=open(mon_path, "w"), stderr=subprocess.DEVNULL)
            time.sleep(0.3)
            l0 = e2e.load1()
            t0 = time.time()
            n, lag = paced_insert(user, a.rate, a.seconds, a.batch)
            rcv.wait_for(n, 300)
            wait_delivered(t0, n)
            mon.send_signal(signal.SIGTERM)
            mon.wait()
            mon = None
            xadd = monitor_xadds(mon_path)
            rows = rcv.records(clear=True)
            arrival = {w: ns / 1e9 for ns, w, _, _ in rows}
            steps, repeats = {}, 0
            for line in psql(
                    "SELECT d.id, 'msg_' || replace(d.event_id::text, '-', ''), t.step, extract(epoch FROM t.at), "
                    "extract(epoch FROM e.created_at) FROM bench_trace t JOIN webhook_deliveries d ON d.id = t.delivery_id "
                    f"JOIN events e ON e.id = d.event_id WHERE d.created_at >= to_timestamp({t0}) ORDER BY t.at").splitlines():
                did, w, step, at, created = line.split("|")
                st = steps.setdefault(w, {"event_created": float(created), "id": did})
                if step in st:
                    repeats += 1  # a second claim (deferred) or take: keep the first claim, the last take
                    if step != "taken":
                        continue
                st[step] = float(at)
            # A dispatcher that attempts what it claims leases for the attempt at once (a
            # "taken" stamp, no job); builds before it claimed, pushed a job, and took.
            pushed = sum(1 for st in steps.values() if st.get("claimed")) > len(steps) / 2
            seq = ["event_created", "created"] + (["claimed", "enqueued"] if pushed else []) + ["taken", "arrived", "recorded"]
            parts = {f"{x}->{y}": [] for x, y in zip(seq, seq[1:])}
            total, full = [], {}
            for w, st in steps.items():
                st["arrived"] = arrival.get(w)
                st["enqueued"] = xadd.get(st["id"])
                if any(st.get(k) is None for k in seq):
                    continue
                full[w] = st
                for x, y in zip(seq, seq[1:]):
                    parts[f"{x}->{y}"].append((st[y] - st[x]) * 1000)
                total.append((st["arrived"] - st["event_created"]) * 1000)
            cut = pct(total, 0.99)
            slow = [st for st in full.values() if (st["arrived"] - st["event_created"]) * 1000 >= cut]
            slow_parts = {f"{x}->{y}": round(statistics.median([(st[y] - st[x]) * 1000 for st in slow]), 2)
                          for x, y in zip(seq, seq[1:])} if slow else {}
            emit({"workload": "webhooks-trace", "pgoptions": os.environ.get("PGOPTIONS", ""), "rate": a.rate, "seconds": a.seconds, "batch": a.batch,
                  "events": n, "traced": len(full), "repeated_steps": repeats, "pacer_max_lag_ms": lag,
                  "load1_before": l0, "latency_ms": dist(total),
                  "steps_ms": {k: dist(v) for k, v in parts.items()},
                  "slowest_1pct_median_steps_ms": slow_parts})
        finally:
            s.stop()
    finally:
        if mon:
            mon.kill()
        rcv.stop()


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--reps", type=int, default=3)
    r.add_argument("--n", type=int, default=20000, help="deliveries per throughput phase (and per pgbench and Celery run)")
    r.add_argument("--endpoints", type=int, default=1, help="endpoints subscribed (each event goes to all)")
    r.add_argument("--clients", default="8,32,b8",
                   help="pgbench client counts (bN: the batched script, N clients); empty to skip")
    r.add_argument("--celery", default="prefork:2,gevent:50", help="pool:concurrency list; empty to skip")
    r.add_argument("--max-load", type=float, default=2.0, help="load gate before each rep (load1)")
    r.add_argument("--max-wait", type=int, default=300, help="longest wait at the load gate (s)")
    t = sub.add_parser("trace")
    for cmd in (r, t):
        cmd.add_argument("--rate", type=int, default=1000)
        cmd.add_argument("--seconds", type=int, default=30, help="paced phase; 0 skips it")
        cmd.add_argument("--batch", type=int, default=50)
    a = p.parse_args()
    if a.cmd == "run" and a.n % a.endpoints:
        p.error("--n must be a multiple of --endpoints")
    if a.cmd == "run":
        run(a)
    else:
        trace(a)


if __name__ == "__main__":
    sys.exit(main())
