#!/usr/bin/env bash
# What this Redis and this PostgreSQL can do on this machine, for the "share of capacity"
# columns of BENCHMARKS.md. Writes ops/bench/results/infra.txt.
# Redis: DB 5 (the harness's DB; FLUSHDB afterwards). Postgres: scratch DB bench_pg, dropped after.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=$HERE/results/infra.txt
PGH=${PGHOST:-127.0.0.1}
{
  echo "## $(date -u +%FT%TZ) load: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "### redis-benchmark -q -n 100000 -t set,lpush --dbnum 5"
  redis-benchmark -q -n 100000 -t set,lpush --dbnum 5
  echo "### redis-benchmark -q -n 100000 --dbnum 5 XADD (custom command; 7.0 has no xadd test)"
  redis-benchmark -q -n 100000 --dbnum 5 XADD bench:rb:stream '*' p '{"run":"r","seq":1,"enq_ns":1,"due_ns":1}'
  echo "### same with -P 16 (pipelined, the shape of push_batch)"
  redis-benchmark -q -n 200000 -P 16 -t set,lpush --dbnum 5
  redis-benchmark -q -n 200000 -P 16 --dbnum 5 XADD bench:rb:stream '*' p '{"run":"r","seq":1,"enq_ns":1,"due_ns":1}'
  redis-cli -n 5 FLUSHDB
  echo "### pgbench (PostgreSQL $(psql -h "$PGH" -U postgres -Atc 'show server_version'))"
  psql -h "$PGH" -U postgres -qc 'DROP DATABASE IF EXISTS bench_pg' -c 'CREATE DATABASE bench_pg'
  pgbench -h "$PGH" -U postgres -i -q -s 10 bench_pg 2>&1 | tail -1
  psql -h "$PGH" -U postgres -q -d bench_pg -f "$HERE/pg/schema.sql"
  echo "#### select-only: pgbench -S -c 50 -j 2 -T 15"
  pgbench -h "$PGH" -U postgres -S -c 50 -j 2 -T 15 bench_pg 2>&1 | grep -E "^(tps|latency|number of (transactions|failed))"
  echo "#### insert run + 2 audit rows per transaction: pgbench -f pg/insert_run.sql -c 50 -j 2 -T 15"
  pgbench -h "$PGH" -U postgres -n -f "$HERE/pg/insert_run.sql" -c 50 -j 2 -T 15 bench_pg 2>&1 | grep -E "^(tps|latency|number of (transactions|failed))"
  psql -h "$PGH" -U postgres -d bench_pg -Atc "select 'rows: runs=' || (select count(*) from bench_runs) || ' audit=' || (select count(*) from bench_audit)"
  psql -h "$PGH" -U postgres -qc 'DROP DATABASE bench_pg'
  echo "## end load: $(cut -d' ' -f1-3 /proc/loadavg)"
} 2>&1 | tr '\r' '\n' | grep -v "rps=" | tee -a "$OUT"
