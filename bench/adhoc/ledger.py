# ruff: noqa: E402, E501, B023
"""Ad-hoc measurement for docs/performance.md, "The provisioning ledger" (issue 24): builds
`bench_ledger_idx` and `bench_ledger_noidx` with N users (default 100,000; the "high"
ratio: a third of users miss every row) and times, each after one warm-up, the median of
`--repeat` runs: the bare count query, the ledger's rebuild, status read live and from the
ledger, a catch-up after 1% new sign-ups (through the real trigger, half of them left
without a profile), and the list's first pages from the ledger and live.

    .venv/bin/python bench/adhoc/ledger.py --users 100000
"""

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, "bench")
sys.path.insert(0, ".")
import run

parser = argparse.ArgumentParser()
parser.add_argument("--users", type=int, default=100_000)
parser.add_argument("--repeat", type=int, default=5)
parser.add_argument("--keep", action="store_true")
args = parser.parse_args()

server = run.server_params()
os.environ["DJANGO_SETTINGS_MODULE"] = run.SETTINGS
names = {"idx": True, "noidx": False}
for name, indexed in names.items():
    t = run.build_database(server, f"bench_ledger_{name}", args.users, indexed=indexed, ratio="high")
    print(f"built bench_ledger_{name} in {t:.0f} s", flush=True)
os.environ["DATABASE_URL"] = run.database_url(server, "bench_ledger_idx")
import django

django.setup()
from django.core.cache import cache
from django.db import connection
from django.test.utils import override_settings

from provisioning.engine import ledger, selectors, statements
from provisioning.engine import plans as plans_module
from provisioning.spec import SPEC


def ms(fn, repeat=args.repeat) -> float:
    fn()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


for name in names:
    run.use_database(f"bench_ledger_{name}", server)
    plans = plans_module.plan_tables(SPEC)
    print(f"\n== {name}: {args.users:,} users ==", flush=True)

    def bare(plans=plans):
        with connection.cursor() as cursor:
            cursor.execute(statements.status_counts(plans))
            cursor.fetchone()

    print(f"bare count query (statements.status_counts): {ms(bare):.0f} ms")
    print(f"ledger rebuild (ledger.rebuild): {ms(lambda plans=plans: ledger.rebuild(plans=plans)):.0f} ms")
    print(f"ledger entries: {ledger.LedgerEntry.objects.count():,}")
    print(f"status live (selectors.status_counts): {ms(lambda: selectors.status_counts(sample=20)):.0f} ms")
    print(
        f"status from the ledger (selectors.ledger_status_counts): {ms(lambda: selectors.ledger_status_counts(sample=20)):.0f} ms"
    )
    print(f"catch-up, nothing new (ledger.catch_up): {ms(ledger.catch_up, 3):.0f} ms")
    new = args.users // 100
    with connection.cursor() as cursor:
        # 1% new sign-ups, set-based, without the trigger (the no-index shape's trigger needs
        # the unique keys): a third get every row, a third an app user only, a third nothing.
        cursor.execute("ALTER TABLE auth.users DISABLE TRIGGER on_auth_user_created")
        cursor.execute(
            "CREATE TEMP TABLE fresh AS SELECT i, gen_random_uuid() AS id FROM generate_series(1, %s) i", [new]
        )
        cursor.execute(
            "INSERT INTO auth.users (instance_id, id, aud, role, email, created_at, updated_at, raw_app_meta_data, "
            "raw_user_meta_data) SELECT '00000000-0000-0000-0000-000000000000', id, 'authenticated', "
            "'authenticated', 'fresh' || i || '@example.com', now(), now(), '{}', '{}' FROM fresh"
        )
        cursor.execute(
            "INSERT INTO public.users (id, email, preferred_currency) SELECT id, 'fresh' || i || '@example.com', "
            "'USDT' FROM fresh WHERE i % 3 <> 0"
        )
        cursor.execute("INSERT INTO public.profiles (user_id, preferences) SELECT id, '{}' FROM fresh WHERE i % 3 = 1")
        cursor.execute("INSERT INTO public.wallets (user_id) SELECT id FROM fresh WHERE i % 3 = 1")
        cursor.execute("ALTER TABLE auth.users ENABLE TRIGGER on_auth_user_created")
    started = time.perf_counter()
    done = ledger.catch_up()
    print(
        f"catch-up after {new:,} new sign-ups: {(time.perf_counter() - started) * 1000:.0f} ms (rebuilt: {done.rebuilt})"
    )
    with override_settings(ALLOWED_HOSTS=["*"]):
        client = run.bench_client()
        for status in ("missing_any", "complete", "cannot"):
            url = f"{run.LIST}?status={status}"
            from_ledger = ms(lambda url=url: run.get_ok(client, url))
            slowest: list[float] = []
            deep = run.page_url(client, status, 3, slowest)
            deep_ms = ms(lambda deep=deep: run.get_ok(client, deep), 3) if deep else float("nan")
            state = ledger.LedgerState.objects.get(pk=1)
            ledger.LedgerState.objects.filter(pk=1).update(fingerprint="off")  # read live
            live = ms(lambda url=url: run.get_ok(client, url), 2)
            ledger.LedgerState.objects.filter(pk=1).update(fingerprint=state.fingerprint)
            print(
                f"list {status}: first page {from_ledger:.0f} ms, page 3 by Next {deep_ms:.0f} ms (ledger); live {live:.0f} ms"
            )
        cache.clear()
        print(f"home page (ledger): {ms(lambda: (cache.clear(), run.get_ok(client, '/admin/'))):.0f} ms")
    connection.close()

if not args.keep:
    for name in names:
        run.drop_database(server, f"bench_ledger_{name}")
