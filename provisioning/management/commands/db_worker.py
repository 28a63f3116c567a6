"""`manage.py db_worker`: django-tasks-db's worker, made to outlive the database.

Managed databases restart (maintenance, failover) and poolers drop connections. The stock
worker exits with a traceback on the first refused connection, and a job it was running
stays "running" until someone restarts the worker and runs `resume_jobs`. This one (it
takes the same options, and shadows the stock command because `provisioning` comes before
`django_tasks_db` in INSTALLED_APPS) waits instead: one log line per attempt, with a
backoff from 1 s up to 30 s, no traceback. Once the database answers again it queues every
interrupted job again (`jobs.resume_orphaned_jobs`, also run when the worker starts), so a
job carries on after its last committed batch with nobody touching anything.
"""

from __future__ import annotations

import os
import time

from django.db import InterfaceError, OperationalError
from django.utils.autoreload import DJANGO_AUTORELOAD_ENV, run_with_reloader
from django_tasks_db.management.commands import db_worker

from provisioning import jobs
from provisioning.errors import drop_connections, first_line

logger = jobs.logger


class ResilientWorker(db_worker.Worker):
    """The stock worker's loop, restarted after the database went away."""

    def run(self) -> None:
        delay = jobs.FIRST_RETRY_DELAY
        attempt = 0
        while self.running:
            try:
                resumed = jobs.resume_orphaned_jobs()
                if attempt:
                    logger.warning("database reachable again after %d attempt(s)", attempt)
                if resumed:
                    logger.warning("queued again interrupted job(s): %s", ", ".join(map(str, resumed)))
                attempt, delay = 0, jobs.FIRST_RETRY_DELAY
                super().run()
                return
            except (OperationalError, InterfaceError) as exc:
                attempt += 1
                drop_connections()
                logger.warning(
                    "database unavailable (%s): attempt %d, retrying in %.0f s", first_line(exc), attempt, delay
                )
                time.sleep(delay)
                delay = min(delay * 2, jobs.MAX_RETRY_DELAY)


class Command(db_worker.Command):
    help = "Run background jobs; waits for the database and resumes interrupted jobs when it is lost."

    def handle(
        self,
        *,
        verbosity: int,
        queue_name: str,
        interval: float,
        batch: bool,
        backend_name: str,
        startup_delay: bool,
        reload: bool,
        max_tasks: int | None,
        worker_id: str,
        **options,
    ) -> None:
        self.configure_logging(verbosity)
        worker = ResilientWorker(
            queue_names=queue_name.split(","),
            interval=interval,
            batch=batch,
            backend_name=backend_name,
            startup_delay=startup_delay,
            max_tasks=max_tasks,
            worker_id=worker_id,
        )
        if reload and not batch:
            if os.environ.get(DJANGO_AUTORELOAD_ENV) == "true":
                worker.configure_signals()
            run_with_reloader(worker.run)
        else:
            worker.configure_signals()
            worker.run()
