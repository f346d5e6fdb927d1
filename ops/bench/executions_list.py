#!/usr/bin/env python3
"""GET /executions at a million runs (standard library only; run executions_list.sh).

1. Four users, each with an account, two instances and a workflow on each; the first
   user (the one measured) has a schedule and a collection on each of its workflows.
2. --rows runs inserted with one generate_series statement, spread evenly over the eight
   workflows (so the measured user holds a quarter), 200 days of created_at; status
   80% succeeded, 10% failed, 5% cancelled, 3% running, 2% queued; of the measured user's
   runs 20% fired by its schedule, 10% windows of its collection, the rest API runs.
   Then VACUUM ANALYZE.
3. For each filter: 50 unmeasured requests, then --requests requests of limit=50 on one
   keep-alive connection, each the page after the previous one (back to the first page at
   the end of the list), timed from sending to the last byte read; p50, p99, max.
4. For each filter, EXPLAIN (ANALYZE, BUFFERS) of the page's query as
   common::execution::list_statement writes it (its columns aside), with a cursor half-way
   through the list, as a prepared statement under plan_cache_mode=force_generic_plan
   (the plan the API's prepared statements settle on); the scans it uses are recorded.
"""

import argparse
import http.client
import json
import re
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

STATUS_SQL = (
    "CASE WHEN (g * 7919) % 100 < 80 THEN 'succeeded' WHEN (g * 7919) % 100 < 90 THEN 'failed' "
    "WHEN (g * 7919) % 100 < 95 THEN 'cancelled' WHEN (g * 7919) % 100 < 98 THEN 'running' ELSE 'queued' END"
)


class Api:
    def __init__(self, base):
        u = urllib.parse.urlparse(base)
        self.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        self.token = None

    def call(self, method, path, body=None):
        headers = {"content-type": "application/json"}
        if self.token:
            headers["authorization"] = f"Bearer {self.token}"
        data = json.dumps(body).encode() if body is not None else None
        self.conn.request(method, "/api/v1" + path, body=data, headers=headers)
        r = self.conn.getresponse()
        text = r.read()
        if r.status >= 300:
            sys.exit(f"{method} {path}: {r.status} {text[:300]!r}")
        return json.loads(text) if text else None


def psql(args, sql):
    out = subprocess.run(
        ["psql", "-h", args.pg, "-U", "postgres", "-d", args.db, "-qAtX", "-v", "ON_ERROR_STOP=1", "-c", sql],
        capture_output=True, text=True,
    )
    if out.returncode != 0:
        sys.exit(f"psql failed: {out.stderr.strip()}")
    return out.stdout.strip()


def user(args, n):
    api = Api(args.api)
    creds = {"email": f"list{n}@example.com", "password": "correct horse battery"}
    api.call("POST", "/auth/register", creds)
    api.token = api.call("POST", "/auth/login", creds)["access_token"]
    acc = api.call("POST", "/accounts", {"name": f"A{n}", "entity_id": f"ENTITY{n}LIST",
                                          "marketplace_id": "ATVPDKIKX0DER", "region": "NA"})["id"]
    wfs = []
    for i in range(2):
        inst = api.call("POST", "/instances", {"name": f"i{n}-{i}", "account_id": acc,
                                                "amc_instance_id": f"amclist{n}x{i}"})["id"]
        wf = api.call("POST", "/workflows", {"name": f"w{n}-{i}", "instance_id": inst,
                                              "sql_query": "SELECT campaign FROM dsp_impressions"})["id"]
        s = c = None
        if n == 0:
            s = api.call("POST", "/schedules", {"workflow_id": wf, "name": f"s{i}", "cron": "0 6 * * *",
                                                 "enabled": False, "time_window": {"kind": "previous_day"}})["id"]
            c = api.call("POST", "/collections", {"workflow_id": wf, "start": "2026-11-01", "end": "2026-11-03",
                                                   "granularity": "day"})["id"]
        wfs.append((wf, inst, s, c))
    return api, wfs


def insert(args, workflows):
    lit = lambda v: f"'{v}'::uuid" if v else "NULL::uuid"
    values = ", ".join(
        f"({k}, {lit(wf)}, {lit(s)}, {lit(c)})" for k, (wf, _inst, s, c) in enumerate(workflows)
    )
    n = len(workflows)
    sql = f"""
    CREATE TEMP TABLE wf AS SELECT v.k, w.id, w.instance_id, w.user_id, v.s, v.c
      FROM (VALUES {values}) v(k, id, s, c) JOIN workflows w ON w.id = v.id;
    INSERT INTO executions (id, user_id, workflow_id, instance_id, status, sql_query, parameters,
        time_window_start, time_window_end, time_zone, triggered_by, schedule_id, collection_id,
        created_at, updated_at)
    SELECT gen_random_uuid(), wf.user_id, wf.id, wf.instance_id, {STATUS_SQL},
        'SELECT campaign FROM dsp_impressions', '{{}}', '2026-01-01', '2026-01-08', 'UTC',
        CASE WHEN wf.s IS NOT NULL AND (g * 104729) % 10 < 2 THEN 'schedule'
             WHEN wf.c IS NOT NULL AND (g * 104729) % 10 = 2 THEN 'collection' ELSE 'api' END,
        CASE WHEN wf.s IS NOT NULL AND (g * 104729) % 10 < 2 THEN wf.s END,
        CASE WHEN wf.c IS NOT NULL AND (g * 104729) % 10 = 2 THEN wf.c END,
        t, t
    FROM generate_series(1::bigint, {args.rows}) g
    JOIN wf ON wf.k = g % {n}
    CROSS JOIN LATERAL (SELECT now() - interval '200 days' + g * (interval '200 days' / {args.rows}) AS t) x;
    """
    t0 = time.time()
    psql(args, sql)
    took = time.time() - t0
    psql(args, "VACUUM ANALYZE executions")
    return took


def filters(me, mid):
    (wf1, inst1, s1, c1) = me[0]
    # (name, query string, condition as the API writes it: ids and instants bound as $3,
    # statuses and origins as literals, and $3's value and type)
    return [
        ("none", {}, "", None),
        ("workflow_id", {"workflow_id": wf1}, "workflow_id = $3", (wf1, "uuid")),
        ("instance_id", {"instance_id": inst1}, "instance_id = $3", (inst1, "uuid")),
        ("status", {"status": "failed"}, "status = 'failed'", None),
        ("status x2", {"status": ["failed", "cancelled"]}, ["cancelled", "failed"], None),
        ("triggered_by=schedule", {"triggered_by": "schedule"}, "triggered_by = 'schedule'", None),
        ("triggered_by=api", {"triggered_by": "api"}, "triggered_by = 'api'", None),
        ("schedule_id", {"schedule_id": s1}, "schedule_id = $3", (s1, "uuid")),
        ("collection_id", {"collection_id": c1}, "collection_id = $3", (c1, "uuid")),
        ("created_after", {"created_after": mid}, "created_at > $3", (mid, "timestamptz")),
        ("created_before", {"created_before": mid}, "created_at < $3", (mid, "timestamptz")),
        ("workflow_id+status", {"workflow_id": wf1, "status": "succeeded"},
         "workflow_id = $3 AND status = 'succeeded'", (wf1, "uuid")),
    ]


def measure(api, query, n):
    base = "/api/v1/executions?" + urllib.parse.urlencode({"limit": 50, **query}, doseq=True)
    headers = {"authorization": f"Bearer {api.token}"}
    cursor, times, items = None, [], 0
    for i in range(n + 50):
        path = base + (f"&cursor={cursor}" if cursor else "")
        t0 = time.perf_counter()
        api.conn.request("GET", path, headers=headers)
        r = api.conn.getresponse()
        body = r.read()
        dt = time.perf_counter() - t0
        if r.status != 200:
            sys.exit(f"GET {path}: {r.status} {body[:300]!r}")
        page = json.loads(body)
        if i >= 50:
            times.append(dt * 1000)
            items += len(page["items"])
        cursor = page["next_cursor"]
    times.sort()
    pick = lambda q: times[min(len(times) - 1, int(q * len(times)))]
    return {"p50_ms": round(pick(0.50), 3), "p99_ms": round(pick(0.99), 3),
            "max_ms": round(times[-1], 3), "requests": n, "items_per_page": round(items / n, 1)}


def explain(args, user_id, cond, param, mid):
    cursor = f"(created_at, id) < ('{mid}', 'ffffffff-ffff-ffff-ffff-ffffffffffff')"
    order = "ORDER BY created_at DESC, id DESC"
    base = f"user_id = $1 AND {cursor}"
    if isinstance(cond, list):
        branches = " UNION ALL ".join(
            f"(SELECT * FROM executions WHERE {base} AND status = '{s}' {order} LIMIT $2)" for s in cond
        )
        sql = f"SELECT * FROM ({branches}) e {order} LIMIT $2"
    else:
        where = base + (f" AND {cond}" if cond else "")
        sql = f"SELECT * FROM executions WHERE {where} {order} LIMIT $2"
    types, values = "uuid, bigint", f"'{user_id}', 51"
    if param:
        types, values = f"{types}, {param[1]}", f"{values}, '{param[0]}'"
    plan = psql(args, f"SET plan_cache_mode = force_generic_plan; PREPARE p({types}) AS {sql}; "
                      f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) EXECUTE p({values});")
    scans = sorted(set(re.findall(r"(?:Index|Index Only|Bitmap Index) Scan(?: Backward)? (?:using|on) (\S+)", plan)))
    seq = any("Seq Scan" in line for line in plan.splitlines())
    return sql, plan, scans, seq


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--api", required=True)
    ap.add_argument("--db", required=True)
    ap.add_argument("--pg", default="127.0.0.1")
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--out", required=True)
    ap.add_argument("--build", default="")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    users = [user(args, n) for n in range(4)]
    me_api, me = users[0]
    workflows = [w for _api, wfs in users for w in wfs]
    took = insert(args, workflows)
    total = int(psql(args, "SELECT count(*) FROM executions"))
    user_id = psql(args, f"SELECT user_id FROM workflows WHERE id = '{me[0][0]}'")
    mine = int(psql(args, f"SELECT count(*) FROM executions WHERE user_id = '{user_id}'"))
    mid = psql(args, f"SELECT to_char((min(created_at) + (max(created_at) - min(created_at)) / 2) "
                     f"AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM executions")
    print(f"{total} runs ({mine} of the measured user) inserted in {took:.1f} s", flush=True)
    load = open("/proc/loadavg").read().split()[0]
    explain_txt = []
    for name, query, cond, param in filters(me, mid):
        m = measure(me_api, query, args.requests)
        sql, plan, scans, seq = explain(args, user_id, cond, param, mid)
        explain_txt.append(f"## {name}\n{sql}\n\n{plan}\n")
        line = {"workload": "executions_list", "build": args.build, "filter": name,
                "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "load1": float(load),
                "rows_total": total, "rows_user": mine, "limit": 50,
                "metrics": {**m, "scans": scans, "seq_scan": seq}}
        print(json.dumps(line), flush=True)
        with open(out / "executions_list.jsonl", "a") as f:
            f.write(json.dumps(line) + "\n")
    (out / "executions_list_explain.txt").write_text("\n".join(explain_txt))


if __name__ == "__main__":
    main()
