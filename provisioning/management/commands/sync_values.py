import json
import sys

from django.core.management.base import CommandError

from provisioning.actors import Actor
from provisioning.drift import services
from provisioning.engine import selectors
from provisioning.engine.services import ProvisioningFailed
from provisioning.spec import TABLE_NAMES

from ._base import EXIT_BAD_INPUT, EXIT_SOME_FAILED, ProvisioningCommand


class Command(ProvisioningCommand):
    help = (
        "Bring the app columns the spec copies from the auth user (public.users.email, ...) back in step with "
        "it, for some users (--user) or every user whose values differ (--all-drifted). Exit 0 when all went "
        "well, 1 when some users were blocked (a unique value taken, a rejected row), 2 on bad arguments or a "
        "database error."
    )

    def add_arguments(self, parser):
        who = parser.add_mutually_exclusive_group(required=True)
        who.add_argument("--user", action="append", metavar="ID_OR_EMAIL", help="an auth user id or email (repeat)")
        who.add_argument("--all-drifted", action="store_true", help="every live user whose values differ")
        parser.add_argument("--table", action="append", choices=TABLE_NAMES, help="limit to this app table (repeat)")
        parser.add_argument(
            "--column", action="append", metavar="TABLE.COLUMN", help="limit to this copied column (repeat)"
        )
        parser.add_argument("--dry-run", action="store_true", help="show old -> new per row; write nothing")
        parser.add_argument(
            "--batch-size",
            type=int,
            default=None,
            help="users per transaction (default: the PROVISIONING_BATCH_SIZE setting, 50,000)",
        )
        parser.add_argument("--json", action="store_true", help="print the result as JSON")

    def handle(self, *args, **options):
        if options["batch_size"] is not None and options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1", returncode=EXIT_BAD_INPUT)
        kwargs = {
            "actor": Actor.command_line(),
            "tables": options["table"],
            "columns": options["column"],
            "dry_run": options["dry_run"],
            "batch_size": options["batch_size"],
        }
        try:
            if options["all_drifted"]:
                result = services.sync_values(all_drifted=True, **kwargs)
            else:
                ids, unknown = selectors.resolve_users(options["user"])
                if unknown:
                    raise CommandError(f"unknown user: {', '.join(unknown)}", returncode=EXIT_BAD_INPUT)
                result = services.sync_values(user_ids=ids, **kwargs)
        except ValueError as exc:
            raise CommandError(str(exc), returncode=EXIT_BAD_INPUT) from exc
        except ProvisioningFailed as exc:
            raise CommandError(
                f"stopped by a database error ({exc}); completed batches: {exc.result.summary()}",
                returncode=EXIT_SOME_FAILED,
            ) from exc
        if options["json"]:
            self.stdout.write(json.dumps(result.as_dict(), indent=2, sort_keys=True))
        else:
            self.stdout.write(result.summary())
            for change in result.changes:
                self.stdout.write(
                    f"{'would set' if result.dry_run else 'set'} {change.table}.{change.column} of {change.user_id}: "
                    f"{change.old!r} -> {change.new!r}"
                )
            if result.total_changed > len(result.changes):
                self.stdout.write(f"... and {result.total_changed - len(result.changes)} more")
            for item in result.blocked:
                self.stdout.write(f"blocked: {item.user_id} {item.table}: {item.reason}")
            if result.blocked_count > len(result.blocked):
                self.stdout.write(f"... and {result.blocked_count - len(result.blocked)} more")
        if not result.ok:
            sys.exit(EXIT_SOME_FAILED)
