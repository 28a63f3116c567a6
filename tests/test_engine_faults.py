"""Faults: the database connection lost mid-request, and a bulk run killed with SIGKILL.

These tests commit (a second connection, a subprocess): they use transactional_db and
clean up auth.users and the app tables afterwards (`clean_app_tables`)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.urls import reverse

from provisioning.models import AuditEvent
from tests.factories import count, execute
from tests.processes import current_database_url, manage_env

pytestmark = pytest.mark.django_db(transaction=True)

BASE_DIR = Path(settings.BASE_DIR)
TABLE_KEYS = {"users": "id", "profiles": "user_id", "wallets": "user_id"}


def terminate_django_connection() -> None:
    """Kill the server process behind Django's connection from a second connection, as a
    database restart or a network cut would, and wait until it is gone."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    params = connection.get_connection_params()
    params.pop("options", None)
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with psycopg.connect(**params, autocommit=True) as other:
        assert other.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone()[0]
        for _ in range(100):
            if not other.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone():
                return
            time.sleep(0.02)
    raise AssertionError("backend still alive")


# --- 9. database gone mid-request --------------------------------------------------------


def test_lost_database_connection_gives_a_503_page_then_the_next_request_works(client, provisioner):
    client.force_login(provisioner)
    changelist = reverse("admin:provisioning_authuser_changelist")
    assert client.get(changelist).status_code == 200

    terminate_django_connection()
    lost = client.get(changelist)
    after = client.get(changelist)

    assert lost.status_code == 503
    assert lost["Retry-After"] == "10"
    html = lost.content.decode()
    assert "The database is unreachable" in html
    assert 'id="site-name"' in html and "Eloity provisioning" in html  # the admin's look
    assert "Traceback" not in html and "psycopg" not in html and "terminating" not in html
    assert after.status_code == 200


def test_healthz_reports_a_lost_database_and_recovers(client):
    assert client.get("/healthz").content == b"ok\n"

    terminate_django_connection()
    lost = client.get("/healthz")
    after = client.get("/healthz")

    assert (lost.status_code, lost.content) == (503, b"unavailable\n")
    assert (after.status_code, after.content) == (200, b"ok\n")


# --- 10. a bulk run killed part way ------------------------------------------------------


def seed_missing_users(email_users: int, phone_only: int) -> None:
    """`email_users` sign-ups with no app rows at all, and `phone_only` that cannot get an app user
    (no email). Committed."""
    execute(
        """
        INSERT INTO auth.users (id, aud, role, email, created_at, updated_at)
        SELECT gen_random_uuid(), 'authenticated', 'authenticated', 'bulk' || g || '@example.com', now(), now()
        FROM generate_series(1, %s) AS g;
        INSERT INTO auth.users (id, aud, role, phone, created_at, updated_at)
        SELECT gen_random_uuid(), 'authenticated', 'authenticated', '1555' || lpad(g::text, 7, '0'), now(), now()
        FROM generate_series(1, %s) AS g;
        TRUNCATE public.users, public.profiles, public.wallets;
        """,
        [email_users, phone_only],
    )


def user_ids_with_rows(table: str) -> list:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {TABLE_KEYS[table]} FROM public.{table}")
        return [row[0] for row in cursor.fetchall()]


def duplicated_users(table: str) -> int:
    key = TABLE_KEYS[table]
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM (SELECT {key} FROM public.{table} GROUP BY {key} HAVING count(*) > 1) d")
        return cursor.fetchone()[0]


def test_bulk_run_killed_part_way_leaves_complete_audited_batches_and_a_rerun_finishes(clean_app_tables):
    users, phone_only, batch = 6000, 30, 50
    seed_missing_users(users, phone_only)
    run = subprocess.Popen(
        [sys.executable, "manage.py", "provision", "--all-missing", "--batch-size", str(batch), "--json"],
        cwd=BASE_DIR,
        env=manage_env(database_url=current_database_url()),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    runs = AuditEvent.objects.filter(action=AuditEvent.Action.PROVISION_ALL_MISSING)
    deadline = time.monotonic() + 60
    try:
        while runs.count() < 3:
            assert run.poll() is None, run.communicate()
            assert time.monotonic() < deadline, "no batch committed within a minute"
            time.sleep(0.005)
        run.send_signal(signal.SIGKILL)
    finally:
        run.kill()
        run.wait(timeout=30)
    assert run.returncode == -signal.SIGKILL

    events = list(runs.order_by("id"))
    total_batches = -(-(users + phone_only) // batch)
    assert 3 <= len(events) < total_batches, "the run finished before it was killed: nothing proven"
    assert len({e.run_id for e in events}) == 1
    targeted = {str(i) for e in events for i in e.target_user_ids}
    for table in TABLE_KEYS:
        present = {str(i) for i in user_ids_with_rows(table)}
        audited = {i for e in events for i in e.rows_created.get(table, [])}
        # Every row written is in a committed, audited batch, and every audited row exists.
        assert present == audited, table
        assert present <= targeted
        assert duplicated_users(table) == 0
    for e in events:
        blocked = {(item["user_id"], item["table"]) for item in e.not_provisioned}
        for table in TABLE_KEYS:
            complete = {str(i) for i in e.target_user_ids if (str(i), table) not in blocked}
            assert complete == set(e.rows_created.get(table, [])), (e.pk, table)  # the batch is whole

    with pytest.raises(SystemExit) as finished:  # exit 1: the phone-only users stay unprovisioned
        call_command("provision", "--all-missing", "--batch-size", "1000")
    assert finished.value.code == 1

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM auth.users")
        assert cursor.fetchone()[0] == users + phone_only
    assert count("users") == users  # everyone with an email
    assert count("profiles") == users + phone_only
    assert count("wallets") == users + phone_only
    for table in TABLE_KEYS:
        assert duplicated_users(table) == 0
    rerun_created = {
        table: sum(len(e.rows_created.get(table, [])) for e in runs.exclude(run_id=events[0].run_id))
        for table in TABLE_KEYS
    }
    first_created = {table: sum(len(e.rows_created.get(table, [])) for e in events) for table in TABLE_KEYS}
    assert rerun_created["profiles"] + first_created["profiles"] == users + phone_only
