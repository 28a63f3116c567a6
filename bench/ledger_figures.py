"""The provisioning ledger's figures on one bench database, in a process of its own (the
spec in force is the environment's PROVISIONING_SPEC, read once per process): run by
bench/run.py (`measure_ledger`), which passes the database and the spec. Prints JSON.

Each figure is the median of `--repeat` runs after a warm-up: the bare count query
(`statements.status_counts`), the ledger's rebuild, status counted live (`--exact`) and
read from the ledger, the home page's counts from the ledger (`?recount=1`, the health
panel cached as between visits), the list's "Missing anything", "Fully provisioned" and
"Cannot be provisioned" first pages from the ledger; then the catch-up after `--signups`
new sign-ups (loaded set-based, the trigger off: a third get every row, a third an app
user only, a third nothing).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import django


def median_ms(fn, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--signups", type=int, default=10_000)
    parser.add_argument("--lists", action="store_true", help="also the list's first pages from the ledger")
    args = parser.parse_args()
    django.setup()
    import run
    from django.core.cache import cache
    from django.db import connection

    from provisioning.engine import catalog, ledger, selectors, statements
    from provisioning.engine import plans as plans_module
    from provisioning.spec import SPEC

    plans = plans_module.plan_tables(SPEC)
    figures: dict = {}

    def bare():
        with connection.cursor() as cursor:
            cursor.execute(statements.status_counts(plans))
            cursor.fetchone()

    figures["bare_count_ms"] = median_ms(bare, args.repeat)
    figures["rebuild_ms"] = median_ms(lambda: ledger.rebuild(plans=plans), args.repeat)
    figures["entries"] = ledger.LedgerEntry.objects.count()
    figures["status_live_ms"] = median_ms(lambda: selectors.status_counts(sample=20), args.repeat)
    figures["status_ledger_ms"] = median_ms(lambda: selectors.ledger_status_counts(sample=20), args.repeat * 2)
    client = run.bench_client()
    run.get_ok(client, "/admin/")  # the health panel, cached as between two visits
    figures["home_ledger_ms"] = median_ms(lambda: run.get_ok(client, "/admin/?recount=1"), args.repeat)
    if args.lists:
        for status in ("missing_any", "complete", "cannot"):
            url = f"{run.LIST}?status={status}"
            figures[f"list_{status}_ledger_ms"] = median_ms(lambda url=url: run.get_ok(client, url), args.repeat)
    cache.clear()

    has_password = "password" in catalog.columns("public", "users")
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE auth.users DISABLE TRIGGER on_auth_user_created")
        cursor.execute(
            "CREATE TEMP TABLE bench_fresh AS SELECT i, gen_random_uuid() AS id FROM generate_series(1, %s) i",
            [args.signups],
        )
        cursor.execute(
            "INSERT INTO auth.users (instance_id, id, aud, role, email, created_at, updated_at, raw_app_meta_data, "
            "raw_user_meta_data) SELECT '00000000-0000-0000-0000-000000000000', id, 'authenticated', "
            "'authenticated', 'fresh' || i || '@example.com', now(), now(), '{}', "
            "jsonb_build_object('username', 'fresh' || i) FROM bench_fresh"
        )
        cursor.execute(
            "INSERT INTO public.users (id, email" + (", password" if has_password else "") + ") "
            "SELECT id, 'fresh' || i || '@example.com'" + (", 'set-by-the-app'" if has_password else "") + " "
            "FROM bench_fresh WHERE i % 3 <> 0"
        )
        cursor.execute("INSERT INTO public.profiles (user_id) SELECT id FROM bench_fresh WHERE i % 3 = 1")
        cursor.execute("INSERT INTO public.wallets (user_id) SELECT id FROM bench_fresh WHERE i % 3 = 1")
        cursor.execute("ALTER TABLE auth.users ENABLE TRIGGER on_auth_user_created")
    started = time.perf_counter()
    done = ledger.catch_up()
    figures["catch_up_ms"] = (time.perf_counter() - started) * 1000
    figures["catch_up_signups"] = args.signups
    figures["catch_up_rebuilt"] = done.rebuilt
    figures["catch_up_checked"] = done.checked
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
