import json
import sys
from collections.abc import Callable

from django.core.management.base import CommandError

from provisioning.actors import Actor
from provisioning.engine import selectors, services
from provisioning.spec import TABLE_NAMES

from ._base import EXIT_BAD_INPUT, EXIT_SOME_FAILED, ProvisioningCommand


class Command(ProvisioningCommand):
    help = (
        "Create the missing app rows for some users (--user) or for everyone missing any "
        "(--all-missing). Exit 0 when all went well, 1 when some users could not be "
        "provisioned, 2 on bad arguments or a database error."
    )

    def add_arguments(self, parser):
        who = parser.add_mutually_exclusive_group(required=True)
        who.add_argument("--user", action="append", metavar="ID_OR_EMAIL", help="an auth user id or email (repeat)")
        who.add_argument("--all-missing", action="store_true", help="every live sign-up missing a row")
        parser.add_argument("--table", action="append", choices=TABLE_NAMES, help="limit to this app table (repeat)")
        parser.add_argument("--dry-run", action="store_true", help="show what would be written; write nothing")
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
        actor = Actor.command_line()
        kwargs = {
            "actor": actor,
            "tables": options["table"],
            "dry_run": options["dry_run"],
            "batch_size": options["batch_size"],
        }
        bar = None
        try:
            if options["all_missing"]:
                bar = self._progress_bar(lambda: selectors.count_missing_any(options["table"]), options["json"])
                kwargs["progress"] = _bar_updater(bar)
                result = services.provision_all_missing(**kwargs)
            else:
                ids, unknown = selectors.resolve_users(options["user"])
                if unknown:
                    raise CommandError(f"unknown user: {', '.join(unknown)}", returncode=EXIT_BAD_INPUT)
                bar = self._progress_bar(lambda: len(ids), options["json"])
                kwargs["progress"] = _bar_updater(bar)
                result = services.provision_users(user_ids=ids, **kwargs)
        except ValueError as exc:
            raise CommandError(str(exc), returncode=EXIT_BAD_INPUT) from exc
        except services.ProvisioningFailed as exc:
            raise CommandError(
                f"stopped by a database error ({exc}); completed batches: {exc.result.summary()}",
                returncode=EXIT_SOME_FAILED,
            ) from exc
        finally:
            if bar is not None:
                bar.close()

        if options["json"]:
            self.stdout.write(json.dumps(result.as_dict(), indent=2, sort_keys=True))
        else:
            self.stdout.write(result.summary())
            for table, columns in result.skipped_columns.items():
                self.stdout.write(f"skipped spec columns that public.{table} lacks: {', '.join(columns)}")
            for item in result.not_provisioned:
                self.stdout.write(f"not provisioned: {item.user_id} {item.table}: {item.reason}")
            if result.not_provisioned_count > len(result.not_provisioned):
                self.stdout.write(f"... and {result.not_provisioned_count - len(result.not_provisioned)} more")
        if not result.ok:
            sys.exit(EXIT_SOME_FAILED)

    def _progress_bar(self, total: Callable[[], int], quiet: bool):
        """A tqdm bar on a terminal (stderr), none when piped or printing JSON. `total` is
        only counted when a bar is shown (at a million users the count takes a second)."""
        if quiet or not sys.stderr.isatty():
            return None
        from tqdm import tqdm

        return tqdm(total=total(), unit="user", desc="provisioning", file=sys.stderr)


def _bar_updater(bar):
    """A services progress callback that moves `bar` to the users done so far."""
    if bar is None:
        return None
    return lambda batches, users, result: bar.update(users - bar.n)
