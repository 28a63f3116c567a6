"""The demo database: seeding, idempotency, and refusing real databases."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from provisioning import demo
from provisioning.engine import selectors
from tests.factories import execute

pytestmark = pytest.mark.django_db


def scalar(statement: str):
    with connection.cursor() as cursor:
        cursor.execute(statement)
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
