"""The background worker outlives the database: a restart, a dropped connection.

On a PostgreSQL cluster this test starts itself (the embedded server's binaries, data in a
temporary folder), never the shared one: it is stopped with an immediate shutdown under a
running job, as a managed database does for maintenance or a failover, then started again.
The worker must wait, reconnect and finish the job by itself, with counters equal to the
job's audit events and every user given exactly one row per table.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
import pytest

from tests.processes import database_url, manage_env, private_cluster, private_prefix, run_manage

BASE_DIR = Path(__file__).resolve().parent.parent
USERS = 600
BATCH = 50
TABLES = ("users", "profiles", "wallets")


@pytest.fixture
def cluster():
    """A private PostgreSQL cluster: (server, conninfo of a fresh database on it), stopped
    when the test ends, pass or fail, even after the test restarted it with pg_ctl.

    Its data lives outside pytest's own temporary folder: as root, the server runs as
    pgserver's user, which must traverse every parent folder, and any pytest session that
    starts meanwhile sets /tmp/pytest-of-root back to 0700 (a restart then fails with
    "could not access directory ... Permission denied")."""
    with tempfile.TemporaryDirectory(prefix=private_prefix()) as folder, private_cluster(Path(folder) / "pg") as server:
        info = server.get_postmaster_info()
        conninfo = {"host": str(info.socket_dir), "port": str(info.port or 5432), "user": "postgres"}
        with psycopg.connect(**conninfo, dbname="postgres", autocommit=True) as conn:
            conn.execute("CREATE DATABASE outage")
        yield server, {**conninfo, "dbname": "outage"}


def _env(conninfo: dict) -> dict:
    return manage_env(database_url=database_url(conninfo))


def _manage(env: dict, *args: str) -> str:
    done = run_manage(*args, env=env, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _prepare(env: dict, conninfo: dict) -> list:
    """Django's tables, the Supabase-like schema and USERS sign-ups that missed every row."""
    _manage(env, "migrate", "--noinput", "-v", "0")
    _manage(env, "shell", "-c", "from provisioning import demo; demo.mark_as_demo_database(); demo.install_schema()")
    with psycopg.connect(**conninfo, autocommit=True) as conn:
        conn.execute("ALTER TABLE auth.users DISABLE TRIGGER on_auth_user_created")
        conn.execute(
            "INSERT INTO auth.users (id, aud, role, email, created_at, updated_at) "
            "SELECT gen_random_uuid(), 'authenticated', 'authenticated', 'outage-' || i || '@example.com', "
            "now(), now() "
            "FROM generate_series(1, %s) i",
            [USERS],
        )
        return [row[0] for row in conn.execute("SELECT id FROM auth.users ORDER BY id")]


def _start_job(env: dict) -> int:
    out = _manage(
        env,
        "shell",
        "-c",
        "from django.contrib.auth.models import Group, User; from provisioning import jobs; "
        "from provisioning.actors import Actor; "
        "staff, _ = User.objects.get_or_create(username='support', is_staff=True); "
        "staff.groups.add(Group.objects.get(name='Support provisioners')); "
        "actor = Actor(username='support', channel='web', user=staff); "
        f"print(jobs.start_provision_all_job(actor=actor, batch_size={BATCH}).pk)",
    )
    return int(out.strip().splitlines()[-1])


def _query(conninfo: dict, statement: str, params=()) -> list[tuple]:
    with psycopg.connect(**conninfo, autocommit=True, connect_timeout=2) as conn:
        return conn.execute(statement, params).fetchall()


def _job(conninfo: dict, job_id: int) -> dict:
    (row,) = _query(
        conninfo,
        "SELECT state, batches_done, total_batches, users_done, total_users, rows_created, attempts, run_id "
        "FROM eloity_admin.provisioning_provisioningjob WHERE id = %s",
        [job_id],
    )
    keys = ("state", "batches_done", "total_batches", "users_done", "total_users", "rows_created", "attempts", "run_id")
    return dict(zip(keys, row, strict=True))


def _wait_for(condition, *, what: str, worker, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except psycopg.OperationalError:
            pass  # the server is down or starting: ask again
        assert worker.poll() is None, f"the worker exited ({worker.returncode}):\n{log.read_text()[-3000:]}"
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}:\n{log.read_text()[-3000:]}")


def _block_user(conninfo: dict, user_id) -> psycopg.Connection:
    """Hold an uncommitted public.users row for `user_id`: the worker's insert for that
    user waits on it, so the worker is inside a batch, with earlier batches committed."""
    blocker = psycopg.connect(**conninfo)
    blocker.execute("INSERT INTO public.users (id, email) VALUES (%s, 'blocker@example.com')", [user_id])
    return blocker


def _worker_waits(conninfo: dict) -> bool:
    rows = _query(
        conninfo,
        "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' "
        "AND query ILIKE '%%INSERT INTO%%users%%'",
    )
    return bool(rows)


def _assert_finished_exactly(conninfo: dict, job_id: int, users: list) -> dict:
    job = _job(conninfo, job_id)
    assert job["state"] == "succeeded"
    for table in TABLES:
        key = "id" if table == "users" else "user_id"
        (per_user,) = _query(
            conninfo,
            f"SELECT count(*), count(DISTINCT {key}) FROM public.{table} WHERE {key} = ANY(%s)",
            [users],
        )
        assert per_user == (len(users), len(users)), table  # one row per user, no duplicates
    # The counters are what the committed audit events say, batch for batch.
    (events,) = _query(
        conninfo,
        "SELECT count(*), coalesce(sum(cardinality(target_user_ids)), 0), "
        "sum(jsonb_array_length(rows_created -> 'users')), sum(jsonb_array_length(rows_created -> 'profiles')), "
        "sum(jsonb_array_length(rows_created -> 'wallets')) FROM eloity_admin.provisioning_auditevent "
        "WHERE run_id = %s AND action = 'provision_all_missing' AND outcome IN ('succeeded', 'partial')",
        [job["run_id"]],
    )
    batches, targeted, *created = events
    assert (job["batches_done"], job["users_done"]) == (batches, targeted)
    assert job["rows_created"] == dict(zip(TABLES, created, strict=True))
    # Every user in exactly one committed batch; progress never passes its total.
    (distinct,) = _query(
        conninfo,
        "SELECT count(DISTINCT u), count(u) FROM eloity_admin.provisioning_auditevent e, unnest(e.target_user_ids) u "
        "WHERE e.run_id = %s AND e.action = 'provision_all_missing' AND e.outcome IN ('succeeded', 'partial')",
        [job["run_id"]],
    )
    assert distinct == (len(users), len(users))
    assert (job["batches_done"], job["users_done"]) == (job["total_batches"], job["total_users"])
    return job


def _finished(conninfo: dict, job_id: int) -> bool:
    return _job(conninfo, job_id)["state"] == "succeeded"


def _pg_ctl(server, *args: str) -> None:
    from pgserver._commands import pg_ctl

    pg_ctl(list(args), pgdata=server.pgdata, user=server.system_user, timeout=60)


def test_worker_outlives_a_database_restart_and_a_dropped_connection(cluster, tmp_path):
    server, conninfo = cluster
    env = _env(conninfo)
    users = _prepare(env, conninfo)
    socket_dir = conninfo["host"]
    log = tmp_path / "worker.log"

    with log.open("w") as log_file:
        worker = subprocess.Popen(
            [sys.executable, "manage.py", "db_worker", "--no-reload", "--no-startup-delay", "--interval", "0.2"],
            cwd=BASE_DIR,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        # 1. An immediate shutdown while the worker is inside its 4th batch.
        first = users[: USERS // 2]
        with psycopg.connect(**conninfo, autocommit=True) as conn:
            # Half the users first: the second half is for the dropped-connection part.
            conn.execute("UPDATE auth.users SET is_anonymous = true WHERE id <> ALL(%s)", [first])
        blocker = _block_user(conninfo, first[3 * BATCH + 5])
        job_id = _start_job(env)
        _wait_for(
            lambda: _job(conninfo, job_id)["batches_done"] == 3 and _worker_waits(conninfo),
            what="the worker to block in its 4th batch",
            worker=worker,
            log=log,
        )
        _pg_ctl(server, "-m", "immediate", "stop")
        blocker.close()
        time.sleep(3)  # the worker meets the refused connection and waits
        assert worker.poll() is None, log.read_text()
        _pg_ctl(server, "-w", "-o", '-h ""', "-o", f"-k {socket_dir}", "-l", str(server.log), "start")

        _wait_for(lambda: _finished(conninfo, job_id), what="the job to finish", worker=worker, log=log)
        job = _assert_finished_exactly(conninfo, job_id, first)
        assert job["attempts"] == 2

        # 2. The worker's connection dropped (a pooler restart, pg_terminate_backend).
        second = users[USERS // 2 :]
        with psycopg.connect(**conninfo, autocommit=True) as conn:
            conn.execute("UPDATE auth.users SET is_anonymous = false")
        blocker = _block_user(conninfo, second[2 * BATCH + 1])
        job_id = _start_job(env)
        _wait_for(
            lambda: _job(conninfo, job_id)["batches_done"] == 2 and _worker_waits(conninfo),
            what="the worker to block in its 3rd batch",
            worker=worker,
            log=log,
        )
        _query(
            conninfo,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND query ILIKE '%%INSERT INTO%%users%%'",
        )
        blocker.rollback()
        blocker.close()
        _wait_for(lambda: _finished(conninfo, job_id), what="the job to finish", worker=worker, log=log)
        job = _assert_finished_exactly(conninfo, job_id, second)
        assert job["attempts"] == 2

        # 3. A restart while the worker is idle, polling its queue: it waits, then runs
        # the next job queued.
        _pg_ctl(server, "-m", "immediate", "stop")
        time.sleep(3)
        assert worker.poll() is None, log.read_text()
        _pg_ctl(server, "-w", "-o", '-h ""', "-o", f"-k {socket_dir}", "-l", str(server.log), "start")
        job_id = _start_job(env)
        _wait_for(lambda: _finished(conninfo, job_id), what="the job to finish", worker=worker, log=log)
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()

    output = log.read_text()
    assert "Traceback" not in output, output
    assert "database unavailable" in output and "database reachable again" in output, output
