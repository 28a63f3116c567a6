import json
import sys
from collections.abc import Callable

from django.core.management.base import CommandError

from provisioning.actors import Actor
from provisioning.engine import selectors, services
from provisioning.spec import qualified_name

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
        "Create the missing app rows for some users (--user) or for everyone missing any "
        "(--all-missing). Exit 0 when all went well, 1 when some users could not be "
        "provisioned, 2 on bad arguments or a database error."
    )

    def add_arguments(self, parser):
        add_run_arguments(
            parser,
            everyone="--all-missing",
            everyone_help="every live sign-up missing a row",
            dry_run_help="show what would be written; write nothing",
        )

    def handle(self, *args, **options):
        require_batch_size(options)
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
                ids, unknown, ambiguous = selectors.resolve_users(options["user"])
                if unknown or ambiguous:
                    raise CommandError(selectors.unresolved_message(unknown, ambiguous), returncode=EXIT_BAD_INPUT)
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
            # In the result's own order: its failures by reason come first.
            self.stdout.write(json.dumps(result.as_dict(), indent=2))
        else:
            # The outcome in the audit log's words, then the failures by reason, then the list.
            self.stdout.write(f"{result.outcome_label}: {result.summary()}")
            for line in failure_lines(result.failure_groups):
                self.stdout.write(line)
            for table, columns in result.skipped_columns.items():
                self.stdout.write(f"skipped spec columns that {qualified_name(table)} lacks: {', '.join(columns)}")
            # People as the pages name them: the email, else the phone.
            people = selectors.person_labels([item.user_id for item in result.not_provisioned])
            for item in result.not_provisioned:
                who = people.get(str(item.user_id), "no such auth user")
                self.stdout.write(
                    f"not provisioned: {item.user_id} ({who}) {qualified_name(item.table)}: {item.reason}"
                )
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
