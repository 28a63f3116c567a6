"""Background "Provision all missing" runs: start, cancel, run, resume.

A job is a `ProvisioningJob` row plus a task in django-tasks' database queue; a worker
(`manage.py db_worker`) runs it through `services.provision_all_missing`, so each batch
commits with its own audit event (tagged with the job's `run_id`), and the job row is
updated after each batch. Nothing lives in a worker's memory that the database does not
also hold: a killed worker leaves complete batches, and `resume_orphaned_jobs` (run by
`manage.py resume_jobs`, which `make run` calls before starting the worker) queues the
job again; it restarts after the last committed batch.

While a worker runs a job it holds a PostgreSQL session advisory lock on it: PostgreSQL
drops the lock when the worker's connection dies, so "is anyone running this job?" is
answered by the database, not by guessing from timestamps.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from django_tasks import task
from psycopg import sql

from provisioning.actors import Actor
from provisioning.audit.recording import record_event
from provisioning.engine import selectors, services
from provisioning.engine.plans import SpecCycle
from provisioning.errors import connection_lost, drop_connections, first_line
from provisioning.models import AuditEvent, ProvisioningJob
from provisioning.spec import select_tables

Action = AuditEvent.Action
Outcome = AuditEvent.Outcome
State = ProvisioningJob.State

#: Advisory lock namespace (first key); the job id is the second key.
LOCK_NAMESPACE = "eloity_admin.provisioning_job"

logger = logging.getLogger("django_tasks_db.reconnect")

#: Seconds to wait after a lost connection; doubled after each failed attempt, up to the cap.
FIRST_RETRY_DELAY = 1.0
MAX_RETRY_DELAY = 30.0

#: after_batch(job) is called after each committed batch, with the job row as saved.
AfterBatch = Callable[[ProvisioningJob], None]


class JobNotCancellable(Exception):
    """The job already finished."""


# --- starting and cancelling (web) ---------------------------------------------------------


def start_provision_all_job(
    *, actor: Actor, tables: list[str] | None = None, batch_size: int | None = None
) -> ProvisioningJob:
    """Queue a background "provision all missing" run and return its job.

    Checks the permission first (a refusal is audited as a denied `job_started` and raises
    ProvisioningDenied). The job row, its `job_started` audit event and the queued task
    commit together. ValueError for an unknown table or a batch size below 1.
    """
    table_names = [s.name for s in select_tables(tables)]
    size = services.batch_size_or_default(batch_size)
    services.require_provisioning(actor=actor, action=Action.JOB_STARTED, tables=table_names)
    with transaction.atomic():
        job = ProvisioningJob.objects.create(
            created_by=actor.staff_user,
            created_by_username=actor.username[:150],
            tables=table_names,
            batch_size=size,
            run_id=uuid.uuid4(),
            rows_created={t: 0 for t in table_names},
        )
        _audit(actor, Action.JOB_STARTED, Outcome.SUCCEEDED, job, detail={"job_id": job.pk, "batch_size": size})
        _enqueue(job)
    return job


def request_cancel(*, actor: Actor, job: ProvisioningJob) -> ProvisioningJob:
    """Ask the job to stop after the batch in flight (a queued job is cancelled at once).

    Committed batches stay committed. Audited as `job_cancelled`. Raises
    ProvisioningDenied without the permission, JobNotCancellable when the job finished.
    """
    services.require_provisioning(
        actor=actor,
        action=Action.JOB_CANCELLED,
        tables=job.tables,
        detail={"job_id": job.pk},
        what="cancel provisioning jobs",
    )
    with transaction.atomic():
        now = timezone.now()
        jobs = ProvisioningJob.objects.filter(pk=job.pk)
        queued = jobs.filter(state=State.QUEUED).update(
            state=State.CANCELLED, cancel_requested=True, finished_at=now, updated_at=now
        )
        running = jobs.filter(state__in=[State.RUNNING, State.CANCELLING]).update(
            state=State.CANCELLING, cancel_requested=True, updated_at=now
        )
        if not (queued or running):
            raise JobNotCancellable(f"Job {job.pk} already finished.")
        job.refresh_from_db()
        _audit(
            actor,
            Action.JOB_CANCELLED,
            Outcome.SUCCEEDED,
            job,
            detail={"job_id": job.pk, "was": "queued" if queued else "running"},
        )
    return job


# --- running (worker) ------------------------------------------------------------------------


@task()
def provision_all_missing_task(job_id: int) -> dict:
    """The django-tasks entry point: run (or resume) one job. Returns its id and final state."""
    job = run_job_through_outages(job_id)
    return {"job_id": job_id, "state": job.state if job else None}


def run_job_through_outages(job_id: int, *, sleep: Callable[[float], None] = time.sleep) -> ProvisioningJob | None:
    """`run_job`, carried on after the database went away (a restart, a failover, a pooler
    that dropped the connection): the batch in flight rolled back, so wait with backoff (one
    log line per attempt), reconnect, and resume after the last committed batch."""
    delay = FIRST_RETRY_DELAY
    attempt = 0
    while True:
        try:
            job = run_job(job_id)
        except DatabaseError as exc:
            if not connection_lost(exc):
                raise
            attempt += 1
            drop_connections()
            logger.warning(
                "job %s: database unavailable (%s): attempt %d, resuming in %.0f s",
                job_id,
                first_line(exc),
                attempt,
                delay,
            )
            sleep(delay)
            delay = min(delay * 2, MAX_RETRY_DELAY)
        else:
            if attempt:
                logger.warning("job %s: database reachable again after %d attempt(s)", job_id, attempt)
            return job


def run_job(job_id: int, *, after_batch: AfterBatch | None = None) -> ProvisioningJob | None:
    """Run the job to its end: succeeded, cancelled or failed, recorded on the job row.

    Safe to call twice or from two workers at once: the second finds the job's lock taken
    (or the job finished) and returns without doing anything. A job resumed after a
    killed worker starts after its last committed batch, and its counters are rebuilt
    from the audit events of its `run_id`. Returns the job (None if it does not exist).
    """
    with _job_lock(job_id) as acquired:
        job = ProvisioningJob.objects.filter(pk=job_id).first()
        if job is None or not acquired or job.finished:
            return job
        if job.cancel_requested:
            _finish(job, State.CANCELLED)
            return job
        _reconcile(job)
        now = timezone.now()
        job.attempts += 1
        job.started_at = job.started_at or now
        job.attempt_started_at = now
        job.attempt_users_start = job.users_done
        ProvisioningJob.objects.filter(pk=job.pk, state=State.QUEUED).update(state=State.RUNNING)
        _save(job)
        actor = Actor(username=job.created_by_username, channel=AuditEvent.Channel.TASK, user=job.created_by)
        try:
            if job.total_users is None:
                job.total_users = selectors.count_missing_any(job.tables)
            _align_totals(job)
            _save(job)
            base = _counters(job)

            def progress(batches: int, users: int, result: services.ProvisioningResult) -> None:
                job.batches_done = base["batches_done"] + batches
                job.users_done = base["users_done"] + users
                job.rows_created = {t: base["rows_created"].get(t, 0) + n for t, n in result.created.items()}
                job.not_provisioned_count = base["not_provisioned_count"] + result.not_provisioned_count
                job.last_user_id = result.last_user_id
                _align_totals(job)
                _save(job)
                if after_batch:
                    after_batch(job)

            result = services.provision_all_missing(
                actor=actor,
                tables=job.tables,
                batch_size=job.batch_size,
                progress=progress,
                should_stop=lambda: ProvisioningJob.objects.filter(pk=job.pk, cancel_requested=True).exists(),
                run_id=job.run_id,
                after=job.last_user_id,
            )
        except SpecCycle as exc:
            _finish(job, State.FAILED, error=f"Nothing was written: {exc}")
        except services.ProvisioningDenied:
            _finish(job, State.FAILED, error=f"{job.created_by_username} may no longer provision users.")
        except services.ProvisioningFailed as exc:
            if exc.__cause__ is not None and connection_lost(exc.__cause__):
                # The batch rolled back; the job resumes once the database is back.
                raise exc.__cause__ from exc
            _reconcile(job)
            _finish(job, State.FAILED, error=f"A batch failed and was rolled back: {exc}")
        except DatabaseError as exc:
            if connection_lost(exc):
                # Not the job's failure: it stays "running", its lock died with the
                # connection, and the worker queues it again once the database is back.
                raise
            _finish(
                job,
                State.FAILED,
                error=f"Database error: {first_line(exc)}",
            )
        else:
            if not result.cancelled:
                # The walk is the truth once it is over: users who signed up or were
                # provisioned by someone else meanwhile moved the first count.
                job.total_users, job.total_batches = job.users_done, job.batches_done
            _finish(job, State.CANCELLED if result.cancelled else State.SUCCEEDED)
    return job


def resume_orphaned_jobs() -> list[int]:
    """Queue again every unfinished job that no worker holds and no queued task will run.

    For a restarted worker: a job whose worker was killed stays "running" in the database;
    this finds it (its advisory lock is free) and queues it, and it resumes after its last
    committed batch. Returns the ids queued.
    """
    from django_tasks import TaskResultStatus
    from django_tasks_db.models import DBTaskResult

    queued: list[int] = []
    for job in ProvisioningJob.objects.filter(state__in=ProvisioningJob.UNFINISHED).order_by("pk"):
        if worker_holds(job.pk):
            continue
        pending = job.task_id and DBTaskResult.objects.filter(pk=job.task_id, status=TaskResultStatus.READY).exists()
        if pending:
            continue
        with transaction.atomic():
            _enqueue(job)
        queued.append(job.pk)
    return queued


def worker_holds(job_id: int) -> bool:
    """True while some worker's session holds the job's lock (is running it)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND classid = hashtext(%s)::oid AND objid = %s::oid AND objsubid = 2 "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))",
            [LOCK_NAMESPACE, job_id],
        )
        return cursor.fetchone()[0]


# --- helpers -----------------------------------------------------------------------------------


def _enqueue(job: ProvisioningJob) -> None:
    result = provision_all_missing_task.enqueue(job.pk)
    job.task_id = str(result.id)
    ProvisioningJob.objects.filter(pk=job.pk).update(task_id=job.task_id)


@contextmanager
def _job_lock(job_id: int) -> Iterator[bool]:
    # A session lock (not a transaction lock): it spans the job's many batch transactions,
    # and PostgreSQL releases it when the worker's connection dies.
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(hashtext(%s), %s)", [LOCK_NAMESPACE, job_id])
        acquired = cursor.fetchone()[0]
    try:
        yield acquired
    finally:
        if acquired:
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(hashtext(%s), %s)", [LOCK_NAMESPACE, job_id])
            except DatabaseError as exc:
                # A lost connection took the lock with it; anything else is a real error.
                if not connection_lost(exc):
                    raise


def _align_totals(job: ProvisioningJob) -> None:
    """Keep the totals at or ahead of the progress: "N of M" never has N > M.

    The first count is an estimate: batches skip soft-deleted and anonymous users, so one
    can hold fewer users than the batch size, and sign-ups go on during a run. The batches
    still to come are what the users still to come need, after the batches done.
    """
    if job.total_users is None:
        return
    job.total_users = max(job.total_users, job.users_done)
    job.total_batches = job.batches_done + math.ceil((job.total_users - job.users_done) / job.batch_size)


def _counters(job: ProvisioningJob) -> dict[str, Any]:
    return {
        "batches_done": job.batches_done,
        "users_done": job.users_done,
        "rows_created": dict(job.rows_created or {}),
        "not_provisioned_count": job.not_provisioned_count,
    }


def _reconcile(job: ProvisioningJob) -> None:
    """Set the job's counters from the audit events of its run: the committed truth.

    The job row is written just after each batch commits; a worker killed in between
    leaves the row one batch behind. The audit events commit with their batch. Sets the
    fields on `job` only: the caller saves them.
    """
    events = sql.SQL(
        "{} e WHERE e.run_id = %(run)s AND e.action = %(action)s AND e.outcome IN (%(ok)s, %(partial)s)"
    ).format(sql.Identifier(AuditEvent._meta.db_table))
    params = {
        "run": job.run_id,
        "action": Action.PROVISION_ALL_MISSING,
        "ok": Outcome.SUCCEEDED,
        "partial": Outcome.PARTIAL,
    }
    per_table = sql.SQL(", ").join(
        sql.SQL("coalesce(sum(jsonb_array_length(coalesce(e.rows_created -> {}, '[]'::jsonb))), 0)").format(
            sql.Literal(t)
        )
        for t in job.tables
    )
    # Batches walk auth.users in id order: the highest id of the run is where it stopped.
    last_user = sql.SQL(
        "(SELECT u FROM (SELECT e.target_user_ids FROM {events}) r, unnest(r.target_user_ids) u "
        "ORDER BY u DESC LIMIT 1)"
    ).format(events=events)
    with connection.cursor() as cursor:
        cursor.execute(
            sql.SQL(
                "SELECT count(*), coalesce(sum(cardinality(e.target_user_ids)), 0), "
                "coalesce(sum(jsonb_array_length(e.not_provisioned)), 0), {last_user}, {per_table} FROM {events}"
            ).format(last_user=last_user, per_table=per_table, events=events),
            params,
        )
        batches, users, not_provisioned, last, *created = cursor.fetchone()
    job.batches_done = int(batches)
    job.users_done = int(users)
    job.not_provisioned_count = int(not_provisioned)
    job.rows_created = {t: int(n) for t, n in zip(job.tables, created, strict=True)}
    job.last_user_id = last


_PROGRESS_FIELDS = (
    "batches_done",
    "users_done",
    "rows_created",
    "not_provisioned_count",
    "last_user_id",
    "total_users",
    "total_batches",
    "attempts",
    "started_at",
    "attempt_started_at",
    "attempt_users_start",
)


def _save(job: ProvisioningJob, **changes: Any) -> None:
    """Write the worker's progress fields (and `changes`), then read back what the web may
    have changed meanwhile."""
    # update(), not save(): the web may have set cancel_requested/state meanwhile, and a
    # worker must never overwrite that (only `_finish` writes the state, at the end).
    fields = {name: getattr(job, name) for name in _PROGRESS_FIELDS}
    ProvisioningJob.objects.filter(pk=job.pk).update(**fields, **changes, updated_at=timezone.now())
    job.refresh_from_db(fields=["state", "cancel_requested", "updated_at", *changes])


def _finish(job: ProvisioningJob, state: str, *, error: str = "") -> None:
    _save(job, state=state, error=error, finished_at=timezone.now())


def _audit(actor: Actor, action: str, outcome: str, job: ProvisioningJob, *, detail: dict) -> AuditEvent:
    return record_event(
        actor=actor, action=action, outcome=outcome, tables=job.tables, detail=detail, run_id=job.run_id
    )
