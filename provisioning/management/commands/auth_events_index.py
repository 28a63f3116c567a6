"""`manage.py auth_events_index [--catch-up | --rebuild]`: keep the dashboard's index of who
each auth event is about (docs/account.md, "The index of auth events").

`make run` runs `--catch-up` every minute; the first catch-up builds the index. Memory stays
flat at any size: the work is set-based SQL in the database.
"""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, InterfaceError, OperationalError
from django.utils import timezone

from provisioning.account import event_index
from provisioning.errors import describe, first_line

EXIT_BAD_INPUT = 2


class Command(BaseCommand):
    help = "Catch the index of auth events up with new entries (default), or rebuild it."

    def add_arguments(self, parser):
        what = parser.add_mutually_exclusive_group()
        what.add_argument("--catch-up", action="store_true", help="index the entries since the cursor (default)")
        what.add_argument("--rebuild", action="store_true", help="index every entry again, in one pass")

    def handle(self, *args, rebuild: bool, **options):
        started = time.monotonic()
        try:
            done = event_index.build() if rebuild else event_index.catch_up()
        except event_index.IndexUnavailable as exc:
            raise CommandError(f"auth events cannot be indexed: {exc}", returncode=EXIT_BAD_INPUT) from exc
        except (OperationalError, InterfaceError) as exc:
            raise CommandError(f"database unreachable: {first_line(exc)}", returncode=EXIT_BAD_INPUT) from exc
        except DatabaseError as exc:
            raise CommandError(f"database error: {describe(exc)}", returncode=EXIT_BAD_INPUT) from exc
        what = f"built ({done.why})" if done.built else "caught up"
        as_of = timezone.localtime(done.state.caught_up_at)
        self.stdout.write(
            f"auth event index {what} in {time.monotonic() - started:.2f} s: {done.written} rows written,"
            f" {done.state.rows} in all; events up to {as_of:%H:%M:%S}"
        )
