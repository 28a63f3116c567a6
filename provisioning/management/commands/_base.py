"""Shared behaviour of the provisioning commands: one clear line and an exit code on
failure, never a traceback."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, InterfaceError, OperationalError

from provisioning.errors import describe, first_line

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


def add_run_arguments(parser, *, everyone: str, everyone_help: str, dry_run_help: str) -> None:
    """The arguments `provision` and `sync_values` share: who (--user ... or `everyone`),
    --table, --dry-run, --batch-size, --json."""
    from provisioning.spec import TABLE_NAMES

    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", action="append", metavar="ID_OR_EMAIL", help="an auth user id or email (repeat)")
    who.add_argument(everyone, action="store_true", help=everyone_help)
    parser.add_argument("--table", action="append", choices=TABLE_NAMES, help="limit to this app table (repeat)")
    parser.add_argument("--dry-run", action="store_true", help=dry_run_help)
    parser.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="users per transaction (default: the PROVISIONING_BATCH_SIZE setting, 50,000)",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def failure_lines(groups, *, heading: str = "could not be provisioned, by reason") -> list[str]:
    """The failures by table and reason, each with its count and a few of its users (email or
    phone): the top of a run's text report, before the capped list, so that no reason is
    hidden at the end of it."""
    from provisioning.engine.selectors import person_labels

    if not groups:
        return []
    labels = person_labels([u for g in groups for u in g.user_ids])
    lines = [f"{heading} (users, table: reason):"]
    for group in groups:
        people = ", ".join(f"{labels[str(u)]} ({str(u)[:8]})" if str(u) in labels else str(u) for u in group.user_ids)
        more = f" and {group.count - len(group.user_ids):,} more" if group.count > len(group.user_ids) else ""
        lines.append(f"  {group.count:>7,}  {group.table_label}: {group.reason}  (for example {people}{more})")
    return lines


def require_batch_size(options: dict) -> None:
    """CommandError (exit 2) for a --batch-size below 1."""
    if options["batch_size"] is not None and options["batch_size"] < 1:
        raise CommandError("--batch-size must be at least 1", returncode=EXIT_BAD_INPUT)


class ProvisioningCommand(BaseCommand):
    def execute(self, *args, **options):
        try:
            require_usable_spec()
            return super().execute(*args, **options)
        except (OperationalError, InterfaceError) as exc:
            raise CommandError(f"database unreachable: {first_line(exc)}", returncode=EXIT_BAD_INPUT) from exc
        except DatabaseError as exc:
            raise CommandError(f"database error: {describe(exc)}", returncode=EXIT_BAD_INPUT) from exc
