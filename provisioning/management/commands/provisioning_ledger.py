"""`manage.py provisioning_ledger [--catch-up | --rebuild]`: keep the provisioning ledger.

The worker runs `--catch-up` every minute (`make run` does); it rebuilds by itself when it
must (no ledger yet, the spec or schema changed, app rows were deleted, the last rebuild is
older than LEDGER_REBUILD_SECONDS). See provisioning/engine/ledger.py.
"""

from __future__ import annotations

import time

from django.utils import timezone

from provisioning.engine import ledger
from provisioning.management.commands._base import ProvisioningCommand, require_usable_spec


class Command(ProvisioningCommand):
    help = "Catch the provisioning ledger up with new sign-ups and the app's own writes (default), or rebuild it."

    def add_arguments(self, parser):
        what = parser.add_mutually_exclusive_group()
        what.add_argument("--catch-up", action="store_true", help="re-check entries and new sign-ups (default)")
        what.add_argument("--rebuild", action="store_true", help="recompute every entry in one pass")

    def handle(self, *args, rebuild: bool, **options):
        require_usable_spec()
        started = time.monotonic()
        if rebuild:
            state = ledger.rebuild()
            what = "rebuilt"
        else:
            done = ledger.catch_up()
            state = done.state
            what = f"rebuilt ({done.why})" if done.rebuilt else f"caught up ({done.checked} users re-checked)"
        entries = ledger.LedgerEntry.objects.count()
        as_of = timezone.localtime(state.caught_up_at)
        self.stdout.write(
            f"ledger {what} in {time.monotonic() - started:.2f} s: {entries} users missing rows, as of {as_of:%H:%M:%S}"
        )
