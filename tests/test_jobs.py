"""Background "Provision all missing" jobs: progress, cancel, a killed worker, the pages."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone
from django_tasks import TaskResultStatus
from django_tasks_db.management.commands.db_worker import Worker
from django_tasks_db.models import DBTaskResult

from provisioning import jobs
from provisioning.actors import Actor
from provisioning.models import AuditEvent, ProvisioningJob
from tests.factories import count, make_auth_user
from tests.processes import database_url, manage_env, run_manage

pytestmark = pytest.mark.django_db

BASE_DIR = Path(__file__).resolve().parent.parent
TABLES = ("users", "profiles", "wallets")
State = ProvisioningJob.State


def _actor(user) -> Actor:
    return Actor(username=user.get_username(), channel=AuditEvent.Channel.WEB, user=user)


def _run_worker_in_process() -> None:
    """Run every queued task, as `manage.py db_worker --batch` does (claim, then run), in this
    process and this test's transaction (the worker loop itself closes connections)."""
    worker = Worker(
        queue_names=["default"],
        interval=0,
        batch=True,
        backend_name="default",
        startup_delay=False,
        max_tasks=None,
        worker_id="test-worker",
    )
    while True:
        with transaction.atomic():
            task_result = DBTaskResult.objects.ready().filter(backend_name="default").get_locked()
            if task_result is None:
                return
            task_result.claim(worker.worker_id)
        worker.run_task(task_result)


def _batch_events(job: ProvisioningJob):
    return AuditEvent.objects.filter(run_id=job.run_id, action=AuditEvent.Action.PROVISION_ALL_MISSING)


def _users_with_every_row(user_ids) -> int:
    return sum(all(count(t, [u]) == 1 for t in TABLES) for u in user_ids)


def test_starting_a_job_queues_a_task_and_audits_it(provisioner):
    job = jobs.start_provision_all_job(actor=_actor(provisioner), batch_size=7)

    job.refresh_from_db()
    assert (job.state, job.batch_size, job.tables, job.created_by_username) == (State.QUEUED, 7, list(TABLES), "prov")
    task = DBTaskResult.objects.get(pk=job.task_id)
    assert task.status == TaskResultStatus.READY and task.args_kwargs["args"] == [job.pk]
    started = AuditEvent.objects.get(run_id=job.run_id, action=AuditEvent.Action.JOB_STARTED)
    assert started.actor_username == "prov" and started.detail["job_id"] == job.pk


def test_progress_advances_after_each_batch(provisioner):
    users = [make_auth_user(keep=()) for _ in range(5)]
    job = jobs.start_provision_all_job(actor=_actor(provisioner), batch_size=2)
    seen = []

    jobs.run_job(job.pk, after_batch=lambda j: seen.append(_progress_in_db(j.pk)))

    assert seen == [(1, 2), (2, 4), (3, 5)]
    job.refresh_from_db()
    assert (job.state, job.total_users, job.total_batches) == (State.SUCCEEDED, 5, 3)
    assert job.rows_created == {"users": 5, "profiles": 5, "wallets": 5}
    assert job.finished_at is not None and job.attempts == 1
    assert _users_with_every_row(users) == 5
    assert _batch_events(job).count() == 3


def _progress_in_db(job_id: int) -> tuple[int, int]:
    # Read back what the page would see: the row in the database, not the worker's object.
    return tuple(ProvisioningJob.objects.filter(pk=job_id).values_list("batches_done", "users_done").get())


def test_the_queued_task_runs_through_the_database_worker(provisioner):
    user = make_auth_user(keep=("users",))
    job = jobs.start_provision_all_job(actor=_actor(provisioner))

    _run_worker_in_process()

    job.refresh_from_db()
    assert job.state == State.SUCCEEDED and job.rows_created == {"users": 0, "profiles": 1, "wallets": 1}
    assert _users_with_every_row([user]) == 1
    assert DBTaskResult.objects.get(pk=job.task_id).status == TaskResultStatus.SUCCESSFUL


def test_cancel_stops_between_batches(provisioner):
    users = sorted(make_auth_user(keep=()) for _ in range(6))
    job = jobs.start_provision_all_job(actor=_actor(provisioner), batch_size=2)

    def cancel_after_first_batch(j):
        if j.batches_done == 1:
            jobs.request_cancel(actor=_actor(provisioner), job=ProvisioningJob.objects.get(pk=j.pk))

    jobs.run_job(job.pk, after_batch=cancel_after_first_batch)

    job.refresh_from_db()
    assert (job.state, job.batches_done, job.users_done) == (State.CANCELLED, 1, 2)
    assert job.cancel_requested and job.finished_at is not None
    # The committed batch is complete; later batches never ran.
    assert _users_with_every_row(users[:2]) == 2
    assert sum(count(t, users[2:]) for t in TABLES) == 0
    assert _batch_events(job).count() == 1
    assert AuditEvent.objects.filter(run_id=job.run_id, action=AuditEvent.Action.JOB_CANCELLED).count() == 1


def test_a_cancelled_queued_job_never_runs(provisioner):
    user = make_auth_user(keep=())
    job = jobs.start_provision_all_job(actor=_actor(provisioner))
    jobs.request_cancel(actor=_actor(provisioner), job=job)

    _run_worker_in_process()

    job.refresh_from_db()
    assert (job.state, job.batches_done) == (State.CANCELLED, 0)
    assert sum(count(t, [user]) for t in TABLES) == 0
    with pytest.raises(jobs.JobNotCancellable):
        jobs.request_cancel(actor=_actor(provisioner), job=job)


def test_a_job_resumes_after_a_crash_in_the_worker(provisioner):
    users = sorted(make_auth_user(keep=()) for _ in range(5))
    job = jobs.start_provision_all_job(actor=_actor(provisioner), batch_size=1)

    class WorkerDied(Exception):
        pass

    def die_after_two_batches(j):
        if j.batches_done == 2:
            raise WorkerDied

    # As a worker does: claim the queued task, then run the job; it dies after two batches
    # and leaves its task "running" for ever, as a killed worker does.
    DBTaskResult.objects.get(pk=job.task_id).claim("doomed-worker")
    with pytest.raises(WorkerDied):
        jobs.run_job(job.pk, after_batch=die_after_two_batches)
    job.refresh_from_db()
    assert (job.state, job.batches_done) == (State.RUNNING, 2)
    assert not jobs.worker_holds(job.pk)

    assert jobs.resume_orphaned_jobs() == [job.pk]
    _run_worker_in_process()

    job.refresh_from_db()
    assert (job.state, job.attempts, job.batches_done, job.users_done) == (State.SUCCEEDED, 2, 5, 5)
    assert _users_with_every_row(users) == 5
    assert sorted(u for e in _batch_events(job) for u in e.target_user_ids) == users


@pytest.mark.usefixtures("clean_app_tables")
def test_a_killed_worker_process_loses_nothing_and_a_restarted_one_finishes(provisioner, tmp_path):
    """A real worker process is SIGKILLed inside its 4th batch; a new worker finishes."""
    users = sorted(make_auth_user(keep=()) for _ in range(8))
    job = jobs.start_provision_all_job(actor=_actor(provisioner), batch_size=1)

    settings = connection.settings_dict
    conninfo = {
        "host": settings["HOST"],
        "port": settings["PORT"],
        "user": settings["USER"],
        "dbname": settings["NAME"],
    }
    if settings.get("PASSWORD"):
        conninfo["password"] = settings["PASSWORD"]
    # Hold an uncommitted app row for the 4th user: the worker's insert for it waits on
    # our transaction, so the worker is mid-batch, with three batches committed, when killed.
    env = manage_env(database_url=database_url(conninfo))
    blocker = psycopg.connect(**conninfo)
    log = tmp_path / "worker.log"
    try:
        blocker.execute("INSERT INTO public.users (id, email) VALUES (%s, %s)", [users[3], "blocker@example.com"])
        with log.open("w") as log_file:
            worker = subprocess.Popen(
                [sys.executable, "manage.py", "db_worker", "--no-reload", "--no-startup-delay", "--interval", "0.1"],
                cwd=BASE_DIR,
                env=env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        try:
            _wait_for(
                lambda: _progress_in_db(job.pk)[0] >= 3 and _waiting_on_lock(conninfo),
                what="the worker to block in the 4th batch",
                worker=worker,
                log=log,
            )
            assert _progress_in_db(job.pk) == (3, 3)
        finally:
            worker.send_signal(signal.SIGKILL)
            worker.wait(timeout=10)
        # PostgreSQL notices a dead client at its next read; a crashed machine's connection
        # would time out. End the orphaned backend now, as the server eventually would.
        with psycopg.connect(**conninfo, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' "
                "AND classid = hashtext(%s)::oid AND objid = %s::oid AND objsubid = 2",
                [jobs.LOCK_NAMESPACE, job.pk],
            )
    finally:
        blocker.rollback()
        blocker.close()
    _wait_for(lambda: not jobs.worker_holds(job.pk), what="the killed worker's session to end")

    job.refresh_from_db()
    # Honest: the row still says running, and the status says no worker holds it.
    assert (job.state, job.batches_done, job.users_done) == (State.RUNNING, 3, 3)
    assert _users_with_every_row(users[:3]) == 3
    assert sum(count(t, users[3:]) for t in TABLES) == 0

    # Restart: what `make run` does before starting its worker, then a worker that runs
    # what is queued and exits.
    resumed = _manage(["resume_jobs"], env)
    assert f"job(s) {job.pk}" in resumed.stdout
    assert jobs.resume_orphaned_jobs() == []  # already queued again: not twice
    _manage(["db_worker", "--batch", "--no-reload", "--no-startup-delay", "--interval", "0"], env)

    job.refresh_from_db()
    assert (job.state, job.attempts, job.batches_done, job.users_done) == (State.SUCCEEDED, 2, 8, 8)
    assert job.rows_created == {"users": 8, "profiles": 8, "wallets": 8}
    assert _users_with_every_row(users) == 8
    targets = [u for e in _batch_events(job) for u in e.target_user_ids]
    assert sorted(targets) == users  # every user in exactly one committed batch


def _manage(args: list[str], env: dict) -> subprocess.CompletedProcess:
    done = run_manage(*args, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def _waiting_on_lock(conninfo: dict) -> bool:
    with psycopg.connect(**conninfo, autocommit=True) as conn:
        return conn.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND query ILIKE '%%INSERT INTO%%users%%')"
        ).fetchone()[0]


def _wait_for(condition, *, what: str, timeout: float = 60, worker=None, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if worker is not None and worker.poll() is not None:
            raise AssertionError(f"the worker exited ({worker.returncode}): {log.read_text()[-2000:] if log else ''}")
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_job_page_and_status_json_render(provisioner_client, provisioner):
    make_auth_user(keep=())
    job = jobs.start_provision_all_job(actor=_actor(provisioner), batch_size=1)

    page = provisioner_client.get(reverse("provisioning_job", args=[job.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="job-progress"' in html and "provisioning/job.js" in html and "Cancel after the current batch" in html

    queued = provisioner_client.get(reverse("provisioning_job_status", args=[job.pk])).json()
    assert (queued["state"], queued["batches_done"], queued["finished"]) == ("queued", 0, False)

    jobs.run_job(job.pk)
    done = provisioner_client.get(reverse("provisioning_job_status", args=[job.pk])).json()
    assert (done["state"], done["batches_done"], done["total_batches"], done["percent"]) == ("succeeded", 1, 1, 100.0)
    assert done["rows_created"] == {"users": 1, "profiles": 1, "wallets": 1}

    listing = provisioner_client.get(reverse("provisioning_jobs"))
    assert listing.status_code == 200 and f"Job {job.pk}" in listing.content.decode()
    assert provisioner_client.get(reverse("provisioning_job", args=[job.pk + 1000])).status_code == 404
    assert provisioner_client.get(f"/admin/tools/jobs/{job.pk}/status.json?x=%00").status_code == 200


def test_provision_all_button_starts_a_job_and_opens_its_page(provisioner_client):
    user = make_auth_user(keep=("users",))

    response = provisioner_client.post(reverse("admin:provisioning_authuser_provision_all"))

    job = ProvisioningJob.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("provisioning_job", args=[job.pk])
    # Nothing is written by the request itself: the worker does it.
    assert count("profiles", [user]) == 0
    cancel = provisioner_client.post(reverse("provisioning_job_cancel", args=[job.pk]))
    assert cancel.status_code == 302
    job.refresh_from_db()
    assert job.state == State.CANCELLED


def test_viewer_may_watch_but_not_start_or_cancel(viewer_client, provisioner):
    job = jobs.start_provision_all_job(actor=_actor(provisioner))

    assert viewer_client.post(reverse("admin:provisioning_authuser_provision_all")).status_code == 403
    assert viewer_client.post(reverse("provisioning_job_cancel", args=[job.pk])).status_code == 403
    assert viewer_client.get(reverse("provisioning_job", args=[job.pk])).status_code == 200

    assert ProvisioningJob.objects.count() == 1
    job.refresh_from_db()
    assert job.state == State.QUEUED and not job.cancel_requested
    denied = AuditEvent.objects.filter(actor_username="view", outcome=AuditEvent.Outcome.DENIED)
    assert set(denied.values_list("action", flat=True)) == {"job_started", "job_cancelled"}


def test_cancel_is_post_only_and_unknown_jobs_are_404(provisioner_client, provisioner):
    job = jobs.start_provision_all_job(actor=_actor(provisioner))
    assert provisioner_client.get(reverse("provisioning_job_cancel", args=[job.pk])).status_code == 405
    assert provisioner_client.post(reverse("provisioning_job_cancel", args=[job.pk + 1000])).status_code == 404


def test_a_job_started_by_someone_who_lost_the_permission_fails_honestly(provisioner):
    make_auth_user(keep=())
    job = jobs.start_provision_all_job(actor=_actor(provisioner))
    provisioner.groups.clear()

    jobs.run_job(job.pk)

    job.refresh_from_db()
    assert job.state == State.FAILED and "may no longer provision" in job.error
    assert job.batches_done == 0


def test_unknown_table_or_bad_batch_size_is_refused_before_anything_is_written(provisioner):
    with pytest.raises(ValueError):
        jobs.start_provision_all_job(actor=_actor(provisioner), tables=["nope"])
    with pytest.raises(ValueError):
        jobs.start_provision_all_job(actor=_actor(provisioner), batch_size=-1)
    assert not ProvisioningJob.objects.exists()


def test_progress_never_passes_its_totals_when_batches_are_sparse(provisioner):
    # Soft-deleted and anonymous sign-ups lacking rows are walked but never provisioned:
    # a batch then holds fewer live users than the batch size, and takes more batches
    # than the first count promised.
    live = []
    for _ in range(6):
        live.append(make_auth_user(keep=()))
        make_auth_user(keep=(), deleted=True)
        make_auth_user(keep=(), anonymous=True)
    job = jobs.start_provision_all_job(actor=_actor(provisioner), batch_size=2)
    seen = []

    jobs.run_job(
        job.pk, after_batch=lambda j: seen.append((j.batches_done, j.total_batches, j.users_done, j.total_users))
    )

    assert len(seen) > 3  # more batches than ceil(6 / 2): the case that read "16 of 14"
    assert all(done <= total and users <= total_users for done, total, users, total_users in seen)
    job.refresh_from_db()
    assert (job.state, job.users_done, job.total_users) == (State.SUCCEEDED, 6, 6)
    assert job.batches_done == job.total_batches == len(seen) == _batch_events(job).count()
    assert _users_with_every_row(live) == 6


def test_a_queued_job_waits_for_a_worker_and_never_shows_shell_commands(provisioner_client, provisioner):
    make_auth_user(keep=())
    job = jobs.start_provision_all_job(actor=_actor(provisioner))
    status_url = reverse("provisioning_job_status", args=[job.pk])

    fresh = provisioner_client.get(status_url).json()
    page = provisioner_client.get(reverse("provisioning_job", args=[job.pk])).content.decode()
    ProvisioningJob.objects.filter(pk=job.pk).update(updated_at=timezone.now() - timedelta(minutes=5))
    late = provisioner_client.get(status_url).json()

    assert fresh["worker_note"] == "— waiting for a worker to pick it up."
    assert "waiting for a worker to pick it up" in page and "manage.py" not in page
    assert "no worker has taken it for 30" in late["worker_note"]
    assert "manage.py" not in late["worker_note"]


def test_a_cancelled_queued_job_says_so_and_reads_as_finished(provisioner_client, provisioner):
    make_auth_user(keep=())
    job = jobs.start_provision_all_job(actor=_actor(provisioner))

    response = provisioner_client.post(reverse("provisioning_job_cancel", args=[job.pk]), follow=True)
    status = provisioner_client.get(reverse("provisioning_job_status", args=[job.pk])).json()
    listing = provisioner_client.get(reverse("provisioning_jobs")).content.decode()

    assert [str(m) for m in response.context["messages"]] == [
        f"Job {job.pk} was cancelled before it started: nothing was written."
    ]
    assert (status["state"], status["finished"], status["worker_note"]) == ("cancelled", True, "")
    assert (status["batches_done"], status["total_batches"], status["percent"]) == (0, 0, 0.0)
    assert "0 / ?" not in listing
