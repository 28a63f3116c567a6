import json

from django.core.management.base import CommandError

from provisioning.actors import Actor
from provisioning.drift import services
from provisioning.engine.services import ProvisioningFailed
from provisioning.spec import TABLE_NAMES

from ._base import EXIT_BAD_INPUT, EXIT_SOME_FAILED, ProvisioningCommand


class Command(ProvisioningCommand):
    help = (
        "Remove app rows whose auth user no longer exists (soft-deleted users' rows are kept), children before "
        "parents, keeping every removed row in the audit event. Run --dry-run first. Exit 0 when done, 1 when "
        "the database refused (a foreign key from another table), 2 on bad arguments."
    )

    def add_arguments(self, parser):
        parser.add_argument("--table", action="append", choices=TABLE_NAMES, help="limit to this app table (repeat)")
        parser.add_argument("--dry-run", action="store_true", help="show what would be removed; remove nothing")
        parser.add_argument("--json", action="store_true", help="print the result, removed rows in full, as JSON")

    def handle(self, *args, **options):
        try:
            result = services.remove_orphans(
                actor=Actor.command_line(), tables=options["table"], dry_run=options["dry_run"]
            )
        except ValueError as exc:
            raise CommandError(str(exc), returncode=EXIT_BAD_INPUT) from exc
        except ProvisioningFailed as exc:
            raise CommandError(f"nothing was removed: {exc}", returncode=EXIT_SOME_FAILED) from exc
        if options["json"]:
            self.stdout.write(json.dumps(result.as_dict(), indent=2, sort_keys=True, default=str))
        else:
            self.stdout.write(result.summary())
