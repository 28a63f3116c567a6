"""Shared behaviour of the provisioning commands: one clear line and an exit code on
failure, never a traceback."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, InterfaceError, OperationalError

from provisioning.errors import first_line

EXIT_SOME_FAILED = 1
EXIT_BAD_INPUT = 2


def require_usable_spec() -> None:
    """CommandError (exit 2) when the spec file cannot be used: a mistake in the file, or a
    table or column it names that the database lacks. One line naming the file and entry."""
    from provisioning.engine.plans import spec_problems

    problems = spec_problems()
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise CommandError(problems[0] + more, returncode=EXIT_BAD_INPUT)


class ProvisioningCommand(BaseCommand):
    def execute(self, *args, **options):
        try:
            require_usable_spec()
            return super().execute(*args, **options)
        except (OperationalError, InterfaceError) as exc:
            raise CommandError(f"database unreachable: {first_line(exc)}", returncode=EXIT_BAD_INPUT) from exc
        except DatabaseError as exc:
            raise CommandError(f"database error: {first_line(exc)}", returncode=EXIT_BAD_INPUT) from exc
