# ruff: noqa: E402, E501
"""Ad-hoc measurement for docs/performance.md, "The index of auth events" (issue 25, speed):
builds `bench_auth_events` with N users (default 1,000,000; bench/run.py's loader, key
indexes, low ratio) and M auth.audit_log_entries (default 10,000,000, through
`manage.py load_demo --auth-events M`: set-based), then measures

- the index's first build and a rebuild (`manage.py auth_events_index --rebuild`, wall
  clock with start-up, and the command's peak RSS);
- the user's page (the whole page, Django's test client, in process): a typical user and
  the user with the most events, timeline pages 1 and 2, and for the heavy user 20 and 40, median and
  p95 of `--repeat` after one warm-up; and, for comparison, the page reading the log
  directly (no index yet), once;
- the catch-up after 10,000 new entries (`manage.py auth_events_index`, wall clock with
  start-up, and its peak RSS), three times; and with nothing new.

    .venv/bin/python bench/adhoc/auth_events.py                      # 1,000,000 / 10,000,000
    .venv/bin/python bench/adhoc/auth_events.py --reuse              # keep the database built before
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, "bench")
sys.path.insert(0, ".")
import run

parser = argparse.ArgumentParser()
parser.add_argument("--users", type=int, default=1_000_000)
parser.add_argument("--events", type=int, default=10_000_000)
parser.add_argument("--repeat", type=int, default=7)
parser.add_argument("--reuse", action="store_true", help="use bench_auth_events as it is")
args = parser.parse_args()

NAME = "bench_auth_events"
server = run.server_params()
os.environ["DJANGO_SETTINGS_MODULE"] = run.SETTINGS
results: dict = {"users": args.users, "events": args.events}


def say(text: str) -> None:
    print(text, flush=True)


if not args.reuse:
    t = run.build_database(server, NAME, args.users, indexed=True, ratio="low")
    say(f"built {NAME} with {args.users:,} users in {t:.0f} s")
    started = time.perf_counter()
    done = run.run_manage(["load_demo", "--users", "50", "--auth-events", str(args.events)], NAME, server)
    results["load_events_s"] = time.perf_counter() - started
    say(f"load_demo --auth-events {args.events:,}: {results['load_events_s']:.0f} s ({done.stdout.splitlines()[0]})")
    with run.connect(server, NAME, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE auth.audit_log_entries")

os.environ["DATABASE_URL"] = run.database_url(server, NAME)
import django

django.setup()
from django.db import connection

from provisioning.account import event_index, timeline
from provisioning.models import AuthEventIndexState

run.use_database(NAME, server)
with connection.cursor() as cursor:
    cursor.execute(
        "SELECT count(*), pg_size_pretty(pg_total_relation_size('auth.audit_log_entries')) FROM auth.audit_log_entries"
    )
    entries, size = cursor.fetchone()
results["entries"], results["log_size"] = entries, size
say(f"auth.audit_log_entries: {entries:,} entries, {size}")
client = run.bench_client()


def cli(label: str, *command: str) -> None:
    done, seconds, rss = run.run_cli_measured(list(command), NAME, server)
    if done.returncode != 0:
        raise SystemExit(f"{label} failed: {done.stdout}{done.stderr}")
    results[label] = {"seconds": seconds, "rss_mb": rss, "out": done.stdout.strip()}
    say(f"{label}: {seconds:.1f} s, peak RSS {rss:.0f} MB ({done.stdout.strip()})")


def page_times(user_id, page: int, repeat: int = args.repeat) -> dict:
    url = f"/admin/provisioning/authuser/{user_id}/change/?timeline_page={page}"
    run.get_ok(client, url)
    times = run.timed(lambda: run.get_ok(client, url), repeat)
    return run.summary(times)


# The page reading the log directly (what a fresh install does), once, for comparison.
AuthEventIndexState.objects.all().delete()
with connection.cursor() as cursor:  # a first build starts from an empty index (--reuse)
    cursor.execute("TRUNCATE provisioning_autheventindex")
with connection.cursor() as cursor:
    cursor.execute("SELECT id FROM auth.users ORDER BY id OFFSET 4242 LIMIT 1")
    (typical,) = cursor.fetchone()
seconds, html = run.get_ok(client, f"/admin/provisioning/authuser/{typical}/change/")
assert "being built" in html
results["page_direct_s"] = seconds
say(f"user's page reading the log directly (no index): {seconds:.2f} s")

cli("first_build", "auth_events_index")
cli("rebuild", "auth_events_index", "--rebuild")
with connection.cursor() as cursor:
    cursor.execute("VACUUM ANALYZE provisioning_autheventindex")
    cursor.execute(
        "SELECT count(*), pg_size_pretty(pg_total_relation_size('provisioning_autheventindex')) FROM provisioning_autheventindex"
    )
    rows, index_size = cursor.fetchone()
    cursor.execute("SELECT user_id, count(*) FROM provisioning_autheventindex GROUP BY 1 ORDER BY 2 DESC LIMIT 1")
    heavy, heavy_count = cursor.fetchone()
    cursor.execute("SELECT count(*) FROM provisioning_autheventindex WHERE user_id = %s", [typical])
    (typical_count,) = cursor.fetchone()
results.update(index_rows=rows, index_size=index_size, heavy_events=heavy_count, typical_events=typical_count)
say(f"index: {rows:,} rows, {index_size}; typical user {typical_count} events, heaviest {heavy_count}")

for who, user_id, pages in (("typical", typical, (1, 2)), ("heavy", heavy, (1, 2, 20, 40))):
    for number in pages:
        figures = page_times(user_id, number)
        results[f"page_{who}_{number}"] = figures
        say(
            f"user's page, {who} user, timeline page {number}: {figures['median_ms']:.0f} ms (p95 {figures['p95_ms']:.0f})"
        )
    page = timeline.timeline(user_id, {"audit_log_entries": event_index.NEEDED}, page=1)
    assert page.entries and page.as_of is not None, who  # really read from the index

cli("catch_up_nothing_new", "auth_events_index")
for attempt in (1, 2, 3):
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM auth.audit_log_entries")
        (have,) = cursor.fetchone()
    # 10,000 new entries, written now: the minute's worth the issue names.
    run.run_manage(["load_demo", "--users", "50", "--auth-events", str(have + 10_000)], NAME, server)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE auth.audit_log_entries SET created_at = now() - random() * interval '50 seconds'"
            " WHERE id IN (SELECT md5('eloity-bulk-audit-' || k)::uuid FROM generate_series(%s, %s) k)",
            [have + 1, have + 10_000],
        )
    cli(f"catch_up_10000_{attempt}", "auth_events_index")

results["machine"] = {"cpus": os.cpu_count(), "load": os.getloadavg()}
with connection.cursor() as cursor:
    cursor.execute("SHOW server_version")
    results["postgres"] = cursor.fetchone()[0]
run.RESULTS_DIR.mkdir(exist_ok=True)
out = run.RESULTS_DIR / f"auth-events-{args.users}-{args.events}-{time.strftime('%Y%m%d-%H%M%S')}.json"
out.write_text(json.dumps(results, indent=2, default=str))
say(f"written {out}")
say(json.dumps({k: v for k, v in results.items() if k.startswith("page_")}, default=str))
