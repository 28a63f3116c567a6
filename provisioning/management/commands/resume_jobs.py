"""`manage.py resume_jobs`: queue again the background jobs a stopped worker left unfinished.

Run it before starting workers (`make run` does): a job whose worker was killed stays
"running" in the database with no one running it; once queued again, a worker resumes it
after its last committed batch. Jobs another worker is running, or that are still queued,
are left alone, so it is safe to run at any time and from any machine.
"""

from __future__ import annotations

from provisioning import jobs
from provisioning.management.commands._base import ProvisioningCommand


class Command(ProvisioningCommand):
    help = "Queue again unfinished provisioning jobs that no worker is running (after a worker restart)."

    def handle(self, *args, **options):
        queued = jobs.resume_orphaned_jobs()
        if queued:
            self.stdout.write(f"Queued again: job(s) {', '.join(str(pk) for pk in queued)}.")
        elif options["verbosity"] > 1:
            self.stdout.write("No orphaned jobs.")
