"""Shared behaviour of the provisioning commands: one clear line and an exit code on
failure, never a traceback."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, InterfaceError, OperationalError

from provisioning.errors import first_line

EXIT_SOME_FAILED = 1
EXIT_BAD_INPUT = 2


class ProvisioningCommand(BaseCommand):
    def execute(self, *args, **options):
        try:
            return super().execute(*args, **options)
        except (OperationalError, InterfaceError) as exc:
            raise CommandError(f"database unreachable: {first_line(exc)}", returncode=EXIT_BAD_INPUT) from exc
        except DatabaseError as exc:
            raise CommandError(f"database error: {first_line(exc)}", returncode=EXIT_BAD_INPUT) from exc
