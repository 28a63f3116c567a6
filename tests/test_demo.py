"""The demo database: seeding, idempotency, and refusing real databases."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from provisioning import demo
from provisioning.engine import selectors
from tests.factories import execute

pytestmark = pytest.mark.django_db


def scalar(statement: str, params=None):
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchone()[0]


def test_seed_creates_a_realistic_mix_and_the_incident_users_lack_profiles():
    assert demo.seed(500) == 500

    missing_profile = set(selectors.users_missing("profiles").values_list("email", flat=True))
    assert set(demo.INCIDENT_EMAILS) <= missing_profile
    assert scalar("SELECT count(*) FROM auth.users WHERE email IS NULL AND phone IS NOT NULL") > 0
    assert scalar("SELECT count(*) FROM auth.users WHERE is_anonymous") > 0
    assert scalar("SELECT count(*) FROM auth.users WHERE deleted_at IS NOT NULL") > 0
    counts = selectors.status_counts()
    assert 0.1 < counts.missing_any / counts.auth_users < 0.6
    assert counts.blocked  # phone-only sign-ups cannot get an app user


def test_second_seed_adds_nothing():
    demo.seed(100)
    assert demo.seed(100) == 0
    assert scalar("SELECT count(*) FROM auth.users") == 100


def test_load_demo_command_prints_the_logins(support_groups, capsys):
    call_command("load_demo", "--users", "60")
    out = capsys.readouterr().out
    assert "Seeded 60 demo sign-ups" in out
    assert "support / support-demo-password" in out
    from django.contrib.auth.models import User

    assert User.objects.get(username="support").has_perm("provisioning.provision_users")
    assert not User.objects.get(username="viewer").has_perm("provisioning.provision_users")


def test_load_demo_refuses_a_database_it_did_not_create():
    name = scalar("SELECT current_database()")
    execute(f'COMMENT ON DATABASE "{name}" IS NULL')
    try:
        with pytest.raises(CommandError, match="refusing to touch database"):
            call_command("load_demo")
        assert scalar("SELECT count(*) FROM auth.users") == 0
    finally:
        demo.mark_as_demo_database()


def _server_conninfo(dbname: str) -> dict:
    db = connection.settings_dict
    return {"host": db["HOST"], "port": db["PORT"], "user": db["USER"], "password": db["PASSWORD"], "dbname": dbname}


def test_load_demo_creates_a_new_demo_database_on_the_same_server_and_refuses_an_existing_one():
    import uuid

    import psycopg

    from tests.processes import current_database_url, manage_env, run_manage

    name = f"eloity_try_{uuid.uuid4().hex[:8]}"
    env = manage_env(database_url=current_database_url())
    admin = _server_conninfo("postgres")
    try:
        created = run_manage("load_demo", "--create-database", name, "--users", "60", env=env, timeout=300)
        assert created.returncode == 0, created.stdout + created.stderr
        assert f"Created demo database {name}" in created.stdout
        with psycopg.connect(**_server_conninfo(name)) as new:
            assert new.execute("SELECT count(*) FROM auth.users").fetchone()[0] == 60
            assert (
                new.execute(
                    "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s", [name]
                ).fetchone()[0]
                == demo.DEMO_MARKER
            )
            assert new.execute("SELECT count(*) FROM eloity_admin.auth_user").fetchone()[0] == 2  # demo logins

        again = run_manage("load_demo", "--create-database", name, env=env)
        assert again.returncode == 2 and "already exists" in again.stderr
        assert "Traceback" not in again.stderr
        bad = run_manage("load_demo", "--create-database", "Robert'); DROP", env=env)
        assert bad.returncode == 2 and "not a plain database name" in bad.stderr
    finally:
        with psycopg.connect(**admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.parametrize("users", [50, 200, 2000, 3333])
def test_the_seven_incident_addresses_are_live_email_sign_ups_missing_a_profile_at_any_size(users):
    assert demo.seed(users) == users

    missing_profile = set(selectors.users_missing("profiles").values_list("email", flat=True))
    assert set(demo.INCIDENT_EMAILS) <= missing_profile


def test_load_demo_chained_shape_gives_foreign_keys_and_a_password_nobody_fills(support_groups):
    from django.core.management import call_command as run

    from tests.factories import run_command

    run("load_demo", "--users", "60", "--shape", "chained")

    parents = scalar(
        "SELECT string_agg(conrelid::regclass || '->' || confrelid::regclass, ',' ORDER BY conname) "
        "FROM pg_constraint WHERE contype = 'f' AND confrelid = 'public.users'::regclass"
    )
    assert parents == "public.profiles->public.users,public.wallets->public.users"
    assert scalar(
        "SELECT attnotnull AND NOT atthasdef FROM pg_attribute "
        "WHERE attrelid = 'public.users'::regclass AND attname = 'password'"
    )
    code, out = run_command("provision", "--all-missing", "--dry-run")
    assert code == 1
    assert "public.users.password is NOT NULL with no default and the spec does not fill it" in out
    assert "needs its public.users row, which cannot be written" in out


# --- the seeded rows are a fixed function of N ------------------------------------------------

#: Digests of what the seed writes, recorded from the seed as it was before the drift deletes
#: became joins: auth.users whole rows; public.users id and email; profiles' and wallets'
#: user_id (their own ids are random and their timestamps now()).
SEEDED_ROWS = r"""
SELECT
  (SELECT count(*) FROM auth.users),
  (SELECT count(*) FROM public.users),
  (SELECT count(*) FROM public.profiles),
  (SELECT count(*) FROM public.wallets),
  (SELECT md5(string_agg(to_jsonb(u)::text, E'\n' ORDER BY u.id)) FROM auth.users u),
  (SELECT md5(string_agg(x.id || ' ' || x.email, E'\n' ORDER BY x.id)) FROM public.users x),
  (SELECT md5(string_agg(x.user_id::text, E'\n' ORDER BY x.user_id)) FROM public.profiles x),
  (SELECT md5(string_agg(x.user_id::text, E'\n' ORDER BY x.user_id)) FROM public.wallets x)
"""

#: N: (auth users, app users, profiles, wallets), the positions i (ranges, inclusive) of the
#: sign-ups without a profile, and the four digests of SEEDED_ROWS. The app table counts
#: include the orphaned rows (max(3, N/200) per table), the auth digest the changed emails
#: (issue 16) and the unconfirmed and banned users and linked providers of
#: auth_activity_seed.sql (issue 25); the rest is as before.
SEEDED = {
    50: (
        (50, 41, 35, 41),
        ((1, 7), (28, 34), (43, 46)),
        (
            "357baf7d8e44d6a96242486e49cf1bbe",
            "e1274e6828ffb43a37d69f7edb229100",
            "924e5b851f2f718ddf3712f2afc8a3c3",
            "beae43b9f7d2fd37b2ff8005d6f2bd6e",
        ),
    ),
    500: (
        (500, 376, 343, 378),
        ((1, 75), (276, 325), (426, 460)),
        (
            "ffc78b175c334261f333d55d8b0a4db0",
            "c0b07643206947eb1199710ba1f148a4",
            "795098df85a8a46226919e04589cb28b",
            "779e9923ea01d535b9a84145e2f3cc0b",
        ),
    ),
    2000: (
        (2000, 1501, 1370, 1510),
        ((1, 300), (1101, 1300), (1701, 1840)),
        (
            "50f27e26207139d92f4175ee3c6db667",
            "fb2130798ccbf98e20b1e90cb9de5403",
            "57769b7bc8ede849b01285723e165491",
            "a141f29c893faf1d109fdfe3e2ac6c32",
        ),
    ),
    3333: (
        (3333, 2500, 2284, 2515),
        ((1, 499), (1834, 2166), (2834, 3066)),
        (
            "cd8caed97a9d3de34ead31bdd89c9a41",
            "161f10fddd33b26f009f5ff5442cc94d",
            "86db57aca594bee7970aeff5cbb12feb",
            "891c8903c8d48a3c738f752fd28ab404",
        ),
    ),
}


def demo_id(i: int):
    import hashlib
    import uuid

    return uuid.UUID(hashlib.md5(f"eloity-demo-{i}".encode()).hexdigest())


def seeded_rows() -> tuple:
    with connection.cursor() as cursor:
        cursor.execute(SEEDED_ROWS)
        return tuple(cursor.fetchone())


def ids_without(table: str, key: str) -> set:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT u.id FROM auth.users u WHERE NOT EXISTS (SELECT 1 FROM public.{table} x WHERE x.{key} = u.id)"
        )
        return {row[0] for row in cursor.fetchall()}


@pytest.mark.parametrize("users", sorted(SEEDED))
def test_seed_writes_the_same_rows_as_before_for_a_given_number_of_users(users):
    counts, no_profile, digests = SEEDED[users]

    assert demo.seed(users) == users

    assert seeded_rows() == (*counts, *digests)
    assert ids_without("profiles", "user_id") == {demo_id(i) for lo, hi in no_profile for i in range(lo, hi + 1)}
    # Wallets: none before the trigger or while it was disabled, and every 23rd lost its own.
    eras = ((1, int(users * 0.15)), (int(users * 0.85) + 1, int(users * 0.92)))
    lost = range(int(users * 0.15) + 1, int(users * 0.85) + 1)
    assert ids_without("wallets", "user_id") == {demo_id(i) for lo, hi in eras for i in range(lo, hi + 1)} | {
        demo_id(i) for i in lost if i % 23 == 0
    }


def test_a_reset_in_the_same_session_drops_the_old_demo_and_seeds_the_same_rows_again():
    assert demo.load(60) == 60
    assert demo.load(500, reset=True) == 500
    counts, _, digests = SEEDED[500]
    assert seeded_rows() == (*counts, *digests)
    assert demo.load(500) == 0  # without --reset: nothing to add


# --- an interrupted reset keeps the previous demo ---------------------------------------------


@pytest.mark.parametrize("interruption", [KeyboardInterrupt, RuntimeError])
def test_a_reset_interrupted_after_the_drop_leaves_the_previous_demo(clean_app_tables, monkeypatch, interruption):
    """Committed for real (no test transaction around it), as `load_demo --reset` runs."""
    assert demo.load(60) == 60
    before = seeded_rows()
    real_seed = demo.seed

    def seed_then_fail(users):
        # The old tables are already dropped and rebuilt empty in this transaction.
        assert scalar("SELECT count(*) FROM auth.users") == 0
        real_seed(users)
        assert scalar("SELECT count(*) FROM auth.users") == users
        raise interruption("stopped part way")

    monkeypatch.setattr(demo, "seed", seed_then_fail)
    if interruption is KeyboardInterrupt:
        with pytest.raises(CommandError, match="interrupted: the demo tables are as they were"):
            call_command("load_demo", "--reset", "--users", "500")
    else:
        with pytest.raises(RuntimeError, match="stopped part way"):
            demo.load(500, reset=True)

    assert seeded_rows() == before
    assert before[:4] == (60, 48, 43, 48)  # with 3 orphaned rows per app table


def test_ctrl_c_during_load_demo_reset_leaves_the_previous_demo(clean_app_tables):
    """The real thing: SIGINT to `manage.py load_demo --reset` while it seeds."""
    import signal
    import subprocess
    import sys
    import time

    from tests.processes import BASE_DIR, current_database_url, manage_env

    assert demo.load(60) == 60
    before = seeded_rows()
    child = subprocess.Popen(
        [sys.executable, "manage.py", "load_demo", "--reset", "--users", "200000"],
        cwd=BASE_DIR,
        env=manage_env(database_url=current_database_url()),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        # The seed script (pg_stat_activity keeps its first KB) runs after the drop, in the
        # same transaction.
        seeding = (
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND state = 'active' AND starts_with(query, %s)"
        )
        while not scalar(seeding, [demo.read_sql("demo_seed.sql")[:200]]):
            assert child.poll() is None, child.communicate()
            assert time.monotonic() < deadline, "the seed never started"
            time.sleep(0.05)
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 130, out + err
    assert "interrupted: the demo tables are as they were" in err
    assert seeded_rows() == before


def test_seed_includes_changed_emails_and_orphaned_rows():
    from provisioning.drift import selectors as drift_selectors

    demo.seed(500)

    per_column, _ = drift_selectors.drift_counts()
    assert [(c.table, c.column) for c in per_column] == [("public.users", "email")]
    assert 5 <= per_column[0].rows <= 15
    orphans = drift_selectors.orphaned_rows()
    assert {table: found["count"] for table, found in orphans.items()} == {
        "public.wallets": 3,
        "public.profiles": 3,
        "public.users": 3,
    }
    assert scalar("SELECT count(*) FROM auth.users") == 500
