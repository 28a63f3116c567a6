# ruff: noqa: E501
"""Ad-hoc measurement for docs/performance.md, "Bulk when the spec fills unique columns"
(issue 24, section 3): builds `bench_unique_<N>` (bench/run.py's "unique" shape: the spec
fills public.users.email and .username and profiles.username from the auth user, profiles
in shape B, hosted auth.users indexes only, a third of users missing every row), then, on
copies of it (CREATE DATABASE ... TEMPLATE), `--repeat` times: the hand-written
`INSERT ... SELECT ... WHERE NOT EXISTS ... ON CONFLICT DO NOTHING` per table, and
`manage.py provision --all-missing` (a subprocess, start-up included), both ending with the
same row counts. `--ledger` builds the provisioning ledger first (each batch then keeps it).
`--explain` also runs the bulk once in this process and prints the time per kind of
statement, and each kind's EXPLAIN ANALYZE from its first batch (run once more first in a
savepoint rolled back: the embedded server has no auto_explain).

    .venv/bin/python bench/adhoc/unique_bulk.py --users 200000 --repeat 3 [--ledger] [--explain]
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys

sys.path.insert(0, "bench")
sys.path.insert(0, ".")
import run

parser = argparse.ArgumentParser()
parser.add_argument("--users", type=int, default=200_000)
parser.add_argument("--repeat", type=int, default=3)
parser.add_argument("--ledger", action="store_true", help="build the provisioning ledger before the runs")
parser.add_argument("--explain", action="store_true", help="time and EXPLAIN ANALYZE every statement of one run")
parser.add_argument("--reuse", action="store_true", help="reuse the source database if it exists")
parser.add_argument("--keep", action="store_true")
args = parser.parse_args()

server = run.server_params()
source = f"bench_unique_{args.users}"
with run.connect(server, "postgres") as admin:
    exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [source]).fetchone()
if not (args.reuse and exists):
    seconds = run.build_database(server, source, args.users, indexed=True, ratio="high", shape="unique")
    print(f"built {source} in {seconds:.0f} s", flush=True)
if args.ledger:
    env = run.processes.manage_env(
        database_url=run.database_url(server, source), settings=run.SETTINGS, PROVISIONING_SPEC=str(run.UNIQUE_SPEC)
    )
    subprocess.run(
        [sys.executable, "manage.py", "provisioning_ledger", "--rebuild"], env=env, check=True, capture_output=True
    )
    print("ledger rebuilt", flush=True)

ours, hand = [], []
for attempt in range(args.repeat):
    work = f"{source}_w"
    run.copy_database(server, source, work)
    try:
        results: dict = {}
        run.measure_bulk(results, server, work, args.users, shape="unique")
    finally:
        run.drop_database(server, work)
    b, h = results["bulk"], results["bulk_baseline"]
    ours.append(b["seconds"])
    hand.append(h["seconds"])
    print(
        f"run {attempt + 1}: ours {b['seconds']:.2f} s ({b['batches']} batches, {b['rss_mb']:.0f} MB, "
        f"{sum(b['rows_created'].values()):,} rows, {b['not_provisioned']} not provisioned), "
        f"hand-written {h['seconds']:.2f} s ({h['rows_created']:,} rows): {b['seconds'] / h['seconds']:.2f}x, "
        f"same rows: {results['bulk_same_rows']}",
        flush=True,
    )
if ours:
    print(
        f"median: ours {statistics.median(ours):.2f} s, hand-written {statistics.median(hand):.2f} s, "
        f"ratio of medians {statistics.median(ours) / statistics.median(hand):.2f}x",
        flush=True,
    )

if args.explain:
    work = f"{source}_explain"
    run.copy_database(server, source, work)
    child = r"""
import collections, json, os, re, sys, time
import django
django.setup()
from django.db import connection
from provisioning.actors import Actor
from provisioning.engine import services

times = collections.defaultdict(lambda: [0, 0.0])
plans = []

def label(sql):
    text = re.sub(r"\s+", " ", sql).strip()
    for key in ("CREATE TEMPORARY TABLE eloity_batch", "WITH written AS (INSERT", "INSERT INTO \"eloity_admin\"",
                "CREATE TEMPORARY TABLE eloity_ledger_refreshed", "DELETE FROM", "pg_advisory_xact_lock",
                "INSERT INTO \"provisioning_ledgerentry\"", "OFFSET", "count(*) FROM \"auth\".\"users\" u WHERE u.id >",
                "SELECT u.id, CASE", "INSERT INTO \"public\""):
        if key in text:
            return key
    return text[:70]

explained = set()

def wrapper(execute, sql, params, many, context):
    text = sql if isinstance(sql, str) else sql.as_string(connection.connection)
    key = label(text)
    # The embedded server has no auto_explain: each kind of statement is run once more
    # first under EXPLAIN ANALYZE, in a savepoint rolled back (its first batch only).
    if key not in explained and not connection.get_autocommit() and re.match(r"\s*(WITH|INSERT|SELECT|CREATE TEMPORARY TABLE eloity_batch|DELETE)", text) and "pg_advisory" not in text:
        explained.add(key)
        with connection.connection.cursor() as raw:
            raw.execute("SAVEPOINT bench_explain")
            try:
                raw.execute("EXPLAIN (ANALYZE, BUFFERS) " + text, params)
                plans.append(key + "\n" + "\n".join(r[0] for r in raw.fetchall()))
            except Exception as exc:
                plans.append(key + f"\n(no plan: {exc})")
            raw.execute("ROLLBACK TO SAVEPOINT bench_explain")
    started = time.perf_counter()
    try:
        return execute(sql, params, many, context)
    finally:
        entry = times[key]
        entry[0] += 1
        entry[1] += time.perf_counter() - started

connection.ensure_connection()
started = time.perf_counter()
with connection.execute_wrapper(wrapper):
    result = services.provision_all_missing(actor=Actor.command_line())
total = time.perf_counter() - started
print(json.dumps({"total": total, "created": result.created, "not_provisioned": result.not_provisioned_count,
                  "batches": result.batches,
                  "times": sorted(([k, v[0], v[1]] for k, v in times.items()), key=lambda r: -r[2]),
                  "plans": plans}))
"""
    env = run.processes.manage_env(
        database_url=run.database_url(server, work), settings=run.SETTINGS, PROVISIONING_SPEC=str(run.UNIQUE_SPEC)
    )
    try:
        done = subprocess.run([sys.executable, "-c", child], env=env, capture_output=True, text=True)  # noqa: S603
        if done.returncode:
            raise SystemExit(done.stderr[-4000:])
        report = json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        run.drop_database(server, work)
    print(f"\nin process: {report['total']:.2f} s, {report['batches']} batches, created {report['created']}")
    for key, n, seconds in report["times"]:
        if seconds >= 0.05:
            print(f"  {seconds:7.2f} s  {n:4d}x  {key}")
    out = f"bench/results/unique_bulk_plans_{args.users}.txt"  # git-ignored
    os.makedirs("bench/results", exist_ok=True)
    with open(out, "w") as f:
        # The batch's id arrays, inlined by EXPLAIN, shortened to their length.
        text = "\n\n".join(report["plans"])
        f.write(re.sub(r"'\{[0-9a-f,-]{200,}\}'", lambda m: f"'{{{m.group(0).count(',') + 1} ids}}'", text))
    print(f"plans (EXPLAIN ANALYZE, each kind of statement once): {out}")

if not args.keep:
    run.drop_database(server, source)
