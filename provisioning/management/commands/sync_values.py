import json
import sys

from django.core.management.base import CommandError

from provisioning.actors import Actor
from provisioning.drift import services
from provisioning.engine import selectors
from provisioning.engine.services import ProvisioningFailed

from ._base import (
    EXIT_BAD_INPUT,
    EXIT_SOME_FAILED,
    ProvisioningCommand,
    add_run_arguments,
    failure_lines,
    require_batch_size,
)


class Command(ProvisioningCommand):
    help = (
        "Bring the app columns the spec copies from the auth user (public.users.email, ...) back in step with "
        "it, for some users (--user) or every user whose values differ (--all-drifted). Exit 0 when all went "
        "well, 1 when some users were blocked (a unique value taken, a rejected row), 2 on bad arguments or a "
        "database error."
    )

    def add_arguments(self, parser):
        add_run_arguments(
            parser,
            everyone="--all-drifted",
            everyone_help="every live user whose values differ",
            dry_run_help="show old -> new per row; write nothing",
        )
        parser.add_argument(
            "--column", action="append", metavar="TABLE.COLUMN", help="limit to this copied column (repeat)"
        )

    def handle(self, *args, **options):
        require_batch_size(options)
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
                ids, unknown, ambiguous = selectors.resolve_users(options["user"])
                if unknown or ambiguous:
                    raise CommandError(selectors.unresolved_message(unknown, ambiguous), returncode=EXIT_BAD_INPUT)
                result = services.sync_values(user_ids=ids, **kwargs)
        except ValueError as exc:
            raise CommandError(str(exc), returncode=EXIT_BAD_INPUT) from exc
        except ProvisioningFailed as exc:
            raise CommandError(
                f"stopped by a database error ({exc}); completed batches: {exc.result.summary()}",
                returncode=EXIT_SOME_FAILED,
            ) from exc
        if options["json"]:
            # In the result's own order: the blocked users by reason come first.
            self.stdout.write(json.dumps(result.as_dict(), indent=2))
        else:
            self.stdout.write(f"{result.outcome_label}: {result.summary()}")
            for line in failure_lines(result.failure_groups, heading="blocked, by reason"):
                self.stdout.write(line)
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
