#!/usr/bin/env python
"""Benchmark eloity-admin at scale against the baselines it must beat (`make bench`).

Builds a throwaway database of N Supabase-like sign-ups (default 1,000,000) with set-based
SQL on the embedded server (or the server of DATABASE_URL; the role needs CREATEDB), with
the demo schema from provisioning/sql: about 10% of users miss a profile, 5% a wallet, 3%
an app user, and 1% have no email (phone-only: no app user can be written for them).
Then measures, in one run:

1. the "missing profile" admin list, first and a deep page: server time over 20 requests
   (Django's test Client, in process) for the real AuthUserAdmin and for a stock
   ModelAdmin with default behaviour (exact counts, a NOT EXISTS filter, one query per
   ✓ cell, newest first), registered on a throwaway AdminSite;
2. `manage.py provisioning_status` against one statement of count(*) FILTER (NOT EXISTS);
3. provisioning everyone missing anything with the CLI (`provision --all-missing`, in a
   subprocess) against one hand-written INSERT ... SELECT ... WHERE NOT EXISTS ... ON
   CONFLICT DO NOTHING per table on a copy of the same data (CREATE DATABASE ... TEMPLATE);
4. the CLI's peak RSS at 100,000 and at N users;
5. `manage.py load_demo --users N`: seeding the demo of N sign-ups (through the real sign-up
   trigger) in a database of its own, after its migrations.

Prints one table and writes it as JSON to bench/results/. Databases it creates are named
eloity_bench_* and dropped at the end unless --keep.
"""

from __future__ import annotations

import argparse
import datetime
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import types
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
sys.path.insert(0, str(BASE_DIR))
from tests import processes  # noqa: E402  (the one way a child's environment is built)

# Production settings (DEBUG off: no query log in memory) with test-only secrets.
SETTINGS = "eloity_admin.settings_test"
REQUESTS = 20
RSS_SMALL = 100_000
#: The deep pages measured: the 20th (the last the first page links to) and the 150th.
DEEP_PAGES = (20, 150)
MILLION = 1_000_000


# --- the server and its databases ---------------------------------------------------------------


def server_params() -> dict:
    """Connection parameters of the server: DATABASE_URL's, or the embedded one's."""
    if os.environ.get("DATABASE_URL"):
        import environ

        cfg = environ.Env.db_url_config(os.environ["DATABASE_URL"])
        host = cfg.get("HOST") or cfg.get("OPTIONS", {}).get("host", "")
        port = cfg.get("PORT") or cfg.get("OPTIONS", {}).get("port", "")
        return {"host": host, "port": str(port or 5432), "user": cfg["USER"], "password": cfg.get("PASSWORD", "")}
    from eloity_admin import embedded

    cfg = embedded.start(BASE_DIR / ".data")
    return {"host": cfg["HOST"], "port": str(cfg["PORT"]), "user": cfg["USER"], "password": cfg["PASSWORD"]}


def connect(server: dict, dbname: str, **kwargs):
    import psycopg

    params = {k: v for k, v in server.items() if v}
    return psycopg.connect(dbname=dbname, **params, **kwargs)


def database_url(server: dict, dbname: str) -> str:
    return processes.database_url({**server, "dbname": dbname})


def drop_database(server: dict, name: str) -> None:
    from psycopg import sql

    with connect(server, "postgres", autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


#: Missing-row ratios: "low" (about 18% of users miss some row: 10% a profile, 5% a wallet,
#: 3% an app user, overlapping) and "high" (a third of users miss all three: the trigger was
#: added after they signed up).
RATIOS = ("low", "high")


def build_database(server: dict, name: str, users: int, *, indexed: bool, ratio: str = "low") -> float:
    """Create database `name` with `users` sign-ups and their app rows. Returns seconds.

    `indexed=False` drops every index on the app tables' key columns but public.users' primary
    key (the Eloity app's own schema: `profiles.user_id` and `wallets.user_id` unindexed)."""
    from psycopg import sql

    from eloity_admin.embedded import DEMO_MARKER
    from provisioning.demo import SCHEMA_SCRIPTS, read_sql

    started = time.perf_counter()
    drop_database(server, name)
    with connect(server, "postgres", autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        # A throwaway database: the demo marker lets eloity-admin's demo-only code run here.
        admin.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(name), sql.Literal(DEMO_MARKER)))
    run_manage(["migrate", "--noinput", "-v", "0"], name, server)
    with connect(server, name, autocommit=True) as conn:
        for script in SCHEMA_SCRIPTS:
            conn.execute(read_sql(script))
        if not indexed:
            conn.execute("DROP INDEX public.profiles_user_id_key")
            conn.execute("ALTER TABLE public.wallets DROP CONSTRAINT wallets_user_id_key")
        # The sign-up trigger would insert one row at a time: load set-based instead.
        conn.execute("ALTER TABLE auth.users DISABLE TRIGGER on_auth_user_created")
        conn.execute(
            "CREATE UNLOGGED TABLE bench_seed AS "
            "SELECT i, gen_random_uuid() AS id, CASE WHEN i % 100 = 0 THEN NULL ELSE 'user' || i || '@example.com' END "
            f"AS email FROM generate_series(1, {int(users)}) AS i"
        )
        conn.execute(
            """
            INSERT INTO auth.users (instance_id, id, aud, role, email, phone, encrypted_password,
                email_confirmed_at, phone_confirmed_at, created_at, updated_at, last_sign_in_at,
                raw_app_meta_data, raw_user_meta_data, confirmation_token, recovery_token,
                email_change_token_new, email_change)
            SELECT '00000000-0000-0000-0000-000000000000', s.id, 'authenticated', 'authenticated', s.email,
                CASE WHEN s.email IS NULL THEN '+1555' || lpad(s.i::text, 9, '0') END, '$2a$10$benchmarknotahash',
                CASE WHEN s.email IS NOT NULL THEN now() - s.i * interval '1 second' END,
                CASE WHEN s.email IS NULL THEN now() - s.i * interval '1 second' END,
                now() - s.i * interval '1 second', now() - s.i * interval '1 second',
                now() - (s.i % 5000) * interval '1 minute',
                '{"provider": "email"}'::jsonb, jsonb_build_object('full_name', 'User ' || s.i), '', '', '', ''
            FROM bench_seed s
            """
        )
        if ratio == "low":
            # Gaps: app user missing for i % 100 in 1..3 (plus the 1% without email), profile
            # for one block in ten, wallet for one in twenty: overlapping like real gaps do.
            has_user = "i % 100 NOT BETWEEN 1 AND 3"
            has_profile, has_wallet = "(i / 100) % 10 <> 0", "(i / 1000) % 20 <> 0"
        else:
            has_user = has_profile = has_wallet = "i % 3 <> 0"
        conn.execute(
            "INSERT INTO public.users (id, email, preferred_currency) SELECT id, email, 'USDT' FROM bench_seed "
            f"WHERE email IS NOT NULL AND {has_user}"
        )
        conn.execute(
            "INSERT INTO public.profiles (user_id, preferences) SELECT id, '{}'::jsonb FROM bench_seed "
            f"WHERE {has_profile}"
        )
        conn.execute(f"INSERT INTO public.wallets (user_id) SELECT id FROM bench_seed WHERE {has_wallet}")
        conn.execute("DROP TABLE bench_seed")
        conn.execute("ALTER TABLE auth.users ENABLE TRIGGER on_auth_user_created")
        conn.execute("VACUUM ANALYZE auth.users, public.users, public.profiles, public.wallets")
    return time.perf_counter() - started


def copy_database(server: dict, source: str, target: str) -> None:
    from psycopg import sql

    drop_database(server, target)
    with connect(server, "postgres", autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(target), sql.Identifier(source)))


def run_manage(args: list[str], dbname: str, server: dict, *, check: bool = True) -> subprocess.CompletedProcess:
    env = processes.manage_env(database_url=database_url(server, dbname), settings=SETTINGS)
    done = subprocess.run(  # noqa: S603 (our own manage.py, our arguments)
        [sys.executable, str(BASE_DIR / "manage.py"), *args], cwd=BASE_DIR, env=env, capture_output=True, text=True
    )
    if check and done.returncode != 0:
        raise SystemExit(f"manage.py {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done


def run_cli_measured(args: list[str], dbname: str, server: dict) -> tuple[subprocess.CompletedProcess, float, float]:
    """Run manage.py in a child of a small wrapper; return (result, seconds, peak RSS in MB).

    The wrapper reads the CLI's own peak RSS (RUSAGE_CHILDREN of the wrapper has one child),
    so earlier children of this script do not count.
    """
    wrapper = (
        "import resource, subprocess, sys, time, json\n"
        "t = time.perf_counter(); r = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "s = time.perf_counter() - t\n"
        "rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
        "print(json.dumps({'rc': r.returncode, 'seconds': s, 'rss_kb': rss, 'out': r.stdout, "
        "'err': r.stderr[-4000:]}))\n"
    )
    env = processes.manage_env(database_url=database_url(server, dbname), settings=SETTINGS)
    done = subprocess.run(  # noqa: S603 (our own manage.py, our arguments)
        [sys.executable, "-c", wrapper, sys.executable, str(BASE_DIR / "manage.py"), *args],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(done.stdout)
    result = subprocess.CompletedProcess(args, report["rc"], report["out"], report["err"])
    return result, report["seconds"], report["rss_kb"] / 1024


# --- measurements --------------------------------------------------------------------------------


def timed(fn, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return times


def summary(times: list[float]) -> dict:
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]
    return {"median_ms": statistics.median(ordered) * 1000, "p95_ms": p95 * 1000, "n": len(ordered)}


def stock_admin_urls():
    """A throwaway AdminSite with a stock ModelAdmin for auth users: what one writes first."""
    from django.contrib import admin
    from django.db.models import Exists, OuterRef
    from django.urls import include, path

    from provisioning.models import AppUser, AuthUser, Profile, Wallet

    class MissingFilter(admin.SimpleListFilter):
        title = "missing"
        parameter_name = "missing"

        def lookups(self, request, model_admin):
            return [("profiles", "Missing profile"), ("wallets", "Missing wallet"), ("users", "Missing app user")]

        def queryset(self, request, queryset):
            keys = {"profiles": (Profile, "user_id"), "wallets": (Wallet, "user_id"), "users": (AppUser, "id")}
            if self.value() in keys:
                # NOT EXISTS, as the docs' Exists() example writes it. The even more naive
                # exclude(pk__in=...) (NOT IN) cannot hash 900,000 keys in work_mem and runs
                # a plain subplan per auth user: one page at 1M users did not finish in
                # 3 minutes, so it cannot serve as a timed baseline.
                model, key = keys[self.value()]
                return queryset.filter(~Exists(model.objects.filter(**{key: OuterRef("pk")})))
            return queryset

    def check(model, key, label):
        @admin.display(description=label, boolean=True)
        def column(obj):
            return model.objects.filter(**{key: obj.pk}).exists()

        column.__name__ = f"has_{label.lower().replace(' ', '_')}"
        return column

    class StockAuthUserAdmin(admin.ModelAdmin):
        list_display = (
            "email",
            "phone",
            "created_at",
            "last_sign_in_at",
            check(AppUser, "id", "App user"),
            check(Profile, "user_id", "Profile"),
            check(Wallet, "user_id", "Wallet"),
        )
        list_filter = (MissingFilter,)
        search_fields = ("email",)
        ordering = ("-created_at",)
        list_per_page = 50
        # Django's own template, not the project's override for this model.
        change_list_template = "admin/change_list.html"

    site = admin.AdminSite(name="bench_stock")
    site.register(AuthUser, StockAuthUserAdmin)
    module = types.ModuleType("bench_urls")
    module.urlpatterns = [path("bench-stock/", site.urls), path("", include("eloity_admin.urls"))]
    sys.modules["bench_urls"] = module
    return "bench_urls"


def measure_lists(results: dict) -> None:
    from django.contrib.auth import get_user_model
    from django.test import Client, override_settings

    user = get_user_model().objects.filter(username="bench").first()
    if user is None:
        user = get_user_model().objects.create_superuser("bench", "bench@example.com", "bench-password-not-secret")
    # Deep pages, or the last page of a small run.
    last = max(1, -(-results["missing_profiles"] // 50))
    deep = sorted({min(page, last) for page in DEEP_PAGES})
    results["deep_pages"] = deep
    urls = {"eloity first page": "/admin/provisioning/authuser/?status=missing_profiles"}
    urls.update({f"eloity page {p}": f"/admin/provisioning/authuser/?status=missing_profiles&p={p}" for p in deep})
    urls["stock first page"] = "/bench-stock/provisioning/authuser/?missing=profiles"
    urls.update({f"stock page {p}": f"/bench-stock/provisioning/authuser/?missing=profiles&p={p}" for p in deep})
    with override_settings(ROOT_URLCONF=stock_admin_urls()):
        client = Client()
        client.force_login(user)
        for label, url in urls.items():
            # Stock pages are slow at 1M: fewer requests for them keep the run short.
            repeat = REQUESTS if label.startswith("eloity") else results["stock_requests"]

            def get(url=url):
                response = client.get(url)
                if response.status_code != 200:
                    raise SystemExit(f"{url} answered {response.status_code}")

            get()  # warm-up: connection, templates, plans
            results["lists"][label] = summary(timed(get, repeat))
            print(f"  {label}: {results['lists'][label]}", flush=True)


FILTER_COUNTS = """
SELECT count(*),
  count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM public.users x WHERE x.id = u.id)),
  count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM public.profiles x WHERE x.user_id = u.id)),
  count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM public.wallets x WHERE x.user_id = u.id))
FROM auth.users u WHERE u.deleted_at IS NULL AND NOT u.is_anonymous
"""


#: A status statement running longer than this is reported as "did not finish".
STATUS_TIMEOUT_S = 120


def measure_status(results: dict, server: dict, dbname: str) -> None:
    from django.core.management import CommandError, call_command
    from django.db import connection

    def status():
        call_command("provisioning_status", stdout=io.StringIO())

    with connection.cursor() as cursor:
        cursor.execute(f"SET statement_timeout = '{STATUS_TIMEOUT_S}s'")
    try:
        status()
        results["status"] = summary(timed(status, 3))
    except CommandError as exc:
        # A statement hit the timeout: report it, do not hang the benchmark for hours.
        results["status"] = {"median_ms": None, "p95_ms": None, "error": str(exc), "timeout_s": STATUS_TIMEOUT_S}
    finally:
        connection.close()
    with connect(server, dbname) as conn:
        conn.execute(FILTER_COUNTS).fetchone()  # warm-up, as ours had
        results["status_baseline"] = summary(timed(lambda: conn.execute(FILTER_COUNTS).fetchone(), 1))


HAND_WRITTEN_SQL = [
    """INSERT INTO public.users (id, email, is_verified, points, level, role, reputation, followers_count,
        following_count, posts_count, profile_views, is_online, profile_visibility, allow_direct_messages,
        allow_notifications, preferred_currency, created_at, updated_at)
    SELECT u.id, u.email, false, 0, 'bronze', 'user', 0, 0, 0, 0, 0, false, 'public', true, true, 'USDT', now(), now()
    FROM auth.users u
    WHERE u.deleted_at IS NULL AND NOT u.is_anonymous AND u.email IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM public.users x WHERE x.id = u.id)
    ON CONFLICT DO NOTHING""",
    """INSERT INTO public.profiles (user_id, role, status, preferences, is_verified, points, level, created_at,
        updated_at)
    SELECT u.id, 'user', 'active', '{}'::jsonb, false, 0, 'bronze', now(), now()
    FROM auth.users u
    WHERE u.deleted_at IS NULL AND NOT u.is_anonymous
      AND NOT EXISTS (SELECT 1 FROM public.profiles x WHERE x.user_id = u.id)
    ON CONFLICT DO NOTHING""",
    """INSERT INTO public.wallets (user_id, btc_balance, eth_balance, usdt_balance, soft_points_balance,
        created_at, updated_at)
    SELECT u.id, 0, 0, 0, 0, now(), now()
    FROM auth.users u
    WHERE u.deleted_at IS NULL AND NOT u.is_anonymous
      AND NOT EXISTS (SELECT 1 FROM public.wallets x WHERE x.user_id = u.id)
    ON CONFLICT DO NOTHING""",
]

APP_COUNTS = (
    "SELECT (SELECT count(*) FROM public.users), (SELECT count(*) FROM public.profiles), "
    "(SELECT count(*) FROM public.wallets)"
)


def measure_bulk(results: dict, server: dict, dbname: str, users: int) -> None:
    copy = f"{dbname}_sql"
    copy_database(server, dbname, copy)
    try:
        with connect(server, copy) as conn:
            started = time.perf_counter()
            rows = 0
            for statement in HAND_WRITTEN_SQL:
                rows += conn.execute(statement).rowcount
            conn.commit()
            baseline = time.perf_counter() - started
            baseline_counts = conn.execute(APP_COUNTS).fetchone()
    finally:
        drop_database(server, copy)

    done, seconds, rss = run_cli_measured(["provision", "--all-missing", "--json"], dbname, server)
    if done.returncode not in (0, 1):  # 1: some users could not be provisioned (expected)
        raise SystemExit(f"provision failed ({done.returncode}): {done.stderr}")
    report = json.loads(done.stdout)
    with connect(server, dbname) as conn:
        our_counts = conn.execute(APP_COUNTS).fetchone()
    results["bulk"] = {
        "seconds": seconds,
        "users_processed": report["users_processed"],
        "rows_created": report["created"],
        "not_provisioned": report["not_provisioned_count"],
        "batches": report["batches"],
        "users_per_second": report["users_processed"] / seconds,
        "rss_mb": rss,
    }
    results["bulk_baseline"] = {
        "seconds": baseline,
        "rows_created": rows,
        "users_per_second": report["users_processed"] / baseline,
    }
    results["bulk_same_rows"] = list(our_counts) == list(baseline_counts)
    results[f"rss_mb_{users}"] = rss


def measure_small_rss(results: dict, server: dict, indexed: bool, ratio: str) -> None:
    name = "eloity_bench_rss_small"
    build_database(server, name, RSS_SMALL, indexed=indexed, ratio=ratio)
    try:
        done, seconds, rss = run_cli_measured(["provision", "--all-missing", "--json"], name, server)
        if done.returncode not in (0, 1):
            raise SystemExit(f"provision failed ({done.returncode}): {done.stderr}")
        results[f"rss_mb_{RSS_SMALL}"] = rss
        results["bulk_small_seconds"] = seconds
    finally:
        drop_database(server, name)


def measure_demo_seed(results: dict, server: dict, users: int) -> None:
    """Time `load_demo --users N` on a new, migrated database marked as a demo."""
    from psycopg import sql

    from eloity_admin.embedded import DEMO_MARKER

    name = "eloity_bench_demo_seed"
    drop_database(server, name)
    with connect(server, "postgres", autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        admin.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(name), sql.Literal(DEMO_MARKER)))
    try:
        run_manage(["migrate", "--noinput", "-v", "0"], name, server)
        done, seconds, rss = run_cli_measured(["load_demo", "--users", str(users)], name, server)
        if done.returncode != 0:
            raise SystemExit(f"load_demo failed ({done.returncode}): {done.stderr}")
        results["demo_seed"] = {"users": users, "seconds": seconds, "rss_mb": rss}
    finally:
        drop_database(server, name)


# --- report ---------------------------------------------------------------------------------


def table_rows(results: dict, users: int) -> list[tuple[str, str, str, str, str]]:
    lists = results["lists"]
    rows = []
    for page in ["first page", *(f"page {p}" for p in results["deep_pages"])]:
        ours, stock = lists[f"eloity {page}"], lists[f"stock {page}"]
        ratio = stock["median_ms"] / ours["median_ms"]
        rows.append(
            (
                f'"missing profile" list, {page}: median (p95)',
                f"{ours['median_ms']:.0f} ms ({ours['p95_ms']:.0f})",
                f"{stock['median_ms']:.0f} ms ({stock['p95_ms']:.0f}) stock ModelAdmin",
                f"{ratio:.1f}x faster",
                "≤ 150 ms and ≥ 10x: " + ("met" if ours["median_ms"] <= 150 and ratio >= 10 else "NOT met"),
            )
        )
    status, base = results["status"], results["status_baseline"]
    if status["median_ms"] is None:
        rows.append(
            (
                "provisioning_status (all counts)",
                f"did not finish in {status['timeout_s']} s (statement timeout)",
                f"{base['median_ms'] / 1000:.2f} s one statement with FILTER",
                "-",
                "≤ 1.5 s: NOT met",
            )
        )
    else:
        rows.append(
            (
                "provisioning_status (all counts): median of 3",
                f"{status['median_ms'] / 1000:.2f} s",
                f"{base['median_ms'] / 1000:.2f} s one statement with FILTER",
                f"{base['median_ms'] / status['median_ms']:.1f}x faster",
                "≤ 1.5 s: " + ("met" if status["median_ms"] <= 1500 else "NOT met"),
            )
        )
    bulk, sql_ = results["bulk"], results["bulk_baseline"]
    ratio = bulk["seconds"] / sql_["seconds"]
    rows.append(
        (
            f"provision all missing ({bulk['users_processed']:,} users, {sum(bulk['rows_created'].values()):,} rows)",
            f"{bulk['seconds']:.1f} s = {bulk['users_per_second']:,.0f} users/s",
            f"{sql_['seconds']:.1f} s = {sql_['users_per_second']:,.0f} users/s hand-written SQL",
            f"{ratio:.2f}x the SQL's time",
            "≤ 1.5x: " + ("met" if ratio <= 1.5 else "NOT met"),
        )
    )
    small = results.get(f"rss_mb_{RSS_SMALL}")
    big = results[f"rss_mb_{users}"]
    rows.append(
        (
            f"bulk run peak RSS at {users:,} users",
            f"{big:.0f} MB",
            f"{small:.0f} MB at {RSS_SMALL:,} users" if small else "-",
            f"{big / small:.2f}x" if small else "-",
            "≤ 150 MB and flat: " + ("met" if big <= 150 and (not small or big <= small * 1.15) else "NOT met"),
        )
    )
    seed = results.get("demo_seed")
    if seed:
        per_million = seed["seconds"] * MILLION / seed["users"]
        rows.append(
            (
                f"load_demo --users {seed['users']:,} (seed, via the sign-up trigger)",
                f"{seed['seconds']:.1f} s",
                "-",
                "-",
                f"about 1 min per 1,000,000: {per_million:.0f} s per 1,000,000",
            )
        )
    return rows


def print_table(rows) -> str:
    header = ("figure", "eloity-admin", "baseline", "ratio", "target")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    text = "\n".join(lines)
    print(text)
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=MILLION, help="auth users to build (default 1,000,000)")
    parser.add_argument(
        "--without-key-indexes",
        "--without-profiles-index",
        dest="without_key_indexes",
        action="store_true",
        help="no index on profiles.user_id nor wallets.user_id (the Eloity app's own schema)",
    )
    parser.add_argument(
        "--ratio",
        choices=RATIOS,
        default="low",
        help="low: about 18%% of users miss some row; high: a third miss all three (default low)",
    )
    parser.add_argument("--stock-requests", type=int, default=REQUESTS, help="requests per stock-admin page")
    parser.add_argument("--skip-small-rss", action="store_true", help=f"do not build the {RSS_SMALL:,}-user database")
    parser.add_argument("--skip-demo-seed", action="store_true", help="do not time `load_demo --users N`")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    args = parser.parse_args()
    if args.users < 1000:
        parser.error("--users must be at least 1000")

    server = server_params()
    suffix = ("_noidx" if args.without_key_indexes else "") + ("_high" if args.ratio == "high" else "")
    dbname = f"eloity_bench_{args.users}{suffix}"
    indexed = not args.without_key_indexes
    results: dict = {
        "users": args.users,
        "key_indexes": indexed,
        "ratio": args.ratio,
        "stock_requests": args.stock_requests,
        "started_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average_at_start": os.getloadavg(),
        },
        "lists": {},
    }
    print(f"building {dbname} with {args.users:,} auth users ...", flush=True)
    results["build_seconds"] = build_database(server, dbname, args.users, indexed=indexed, ratio=args.ratio)
    print(f"  built in {results['build_seconds']:.0f} s", flush=True)

    os.environ["DJANGO_SETTINGS_MODULE"] = SETTINGS
    os.environ["DATABASE_URL"] = database_url(server, dbname)
    import warnings

    import django

    # WhiteNoise warns that collectstatic has not run: irrelevant to timings.
    warnings.filterwarnings("ignore", message="No directory at")
    django.setup()
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        results["machine"]["postgresql"] = cursor.fetchone()[0]
        cursor.execute(
            "SELECT (SELECT count(*) FROM auth.users), "
            "(SELECT count(*) FROM auth.users u "
            "WHERE NOT EXISTS (SELECT 1 FROM public.profiles p WHERE p.user_id = u.id))"
        )
        results["auth_users"], results["missing_profiles"] = cursor.fetchone()
    try:
        print("1. lists ...", flush=True)
        measure_lists(results)
        print("2. provisioning_status ...", flush=True)
        measure_status(results, server, dbname)
        print(f"   {results['status']} vs {results['status_baseline']}", flush=True)
        connection.close()
        print("3. bulk provisioning (ours, then hand-written SQL on a copy) ...", flush=True)
        measure_bulk(results, server, dbname, args.users)
        print(f"   {results['bulk']} vs {results['bulk_baseline']}", flush=True)
        if args.users > RSS_SMALL and not args.skip_small_rss:
            print(f"4. bulk run RSS at {RSS_SMALL:,} users ...", flush=True)
            measure_small_rss(results, server, indexed, args.ratio)
        if not args.skip_demo_seed:
            print(f"5. load_demo --users {args.users:,} ...", flush=True)
            measure_demo_seed(results, server, args.users)
            print(f"   {results['demo_seed']}", flush=True)
    finally:
        connection.close()
        if not args.keep:
            drop_database(server, dbname)

    results["machine"]["load_average_at_end"] = os.getloadavg()
    results["finished_at"] = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    print()
    results["table_markdown"] = print_table(table_rows(results, args.users))
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = RESULTS_DIR / f"bench-{args.users}{suffix}-{stamp}.json"
    out.write_text(json.dumps(results, indent=2, default=str))
    print(f"\nwritten: {out.relative_to(BASE_DIR)}")


if __name__ == "__main__":
    main()
