"""Shared behaviour of the provisioning commands: one clear line and an exit code on
failure, never a traceback."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, InterfaceError, OperationalError

EXIT_OK = 0
EXIT_SOME_FAILED = 1
EXIT_BAD_INPUT = 2


class ProvisioningCommand(BaseCommand):
    def execute(self, *args, **options):
        try:
            return super().execute(*args, **options)
        except (OperationalError, InterfaceError) as exc:
            raise CommandError(f"database unreachable: {_first_line(exc)}", returncode=EXIT_BAD_INPUT) from exc
        except DatabaseError as exc:
            raise CommandError(f"database error: {_first_line(exc)}", returncode=EXIT_BAD_INPUT) from exc


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else exc.__class__.__name__
