import json

from django.core.management.base import CommandError

from provisioning.actors import Actor
from provisioning.approvals import kinds as approval_kinds
from provisioning.approvals import services as approvals
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
        parser.add_argument(
            "--reason", default="", help="why (required while APPROVALS is on: the removal is a request)"
        )
        parser.add_argument(
            "--as", dest="as_user", metavar="USERNAME", help="ask as this staff account (default: the OS user)"
        )

    def handle(self, *args, **options):
        if approvals.approvals_on() and not options["dry_run"]:
            return self._ask(options)
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

    def _ask(self, options):
        """The two-person rule: the removal becomes a request another staff member approves
        (`manage.py approvals approve ID --as USERNAME`). Prints its number."""
        from .approvals import staff_actor

        actor = staff_actor(options["as_user"]) if options["as_user"] else Actor.command_line()
        try:
            asked = approvals.request_approval(
                actor=actor,
                kind=approval_kinds.REMOVE_ORPHANS,
                params={"tables": options["table"]} if options["table"] else {},
                reason=options["reason"],
            )
        except ValueError as exc:
            raise CommandError(f"{exc} (--reason)", returncode=EXIT_BAD_INPUT) from exc
        except approvals.ApprovalDenied as exc:
            raise CommandError(str(exc), returncode=EXIT_SOME_FAILED) from exc
        if options["json"]:
            self.stdout.write(json.dumps({"request_id": asked.pk, "state": asked.state, "summary": asked.summary}))
        else:
            self.stdout.write(
                f"Request #{asked.pk} asked: {asked.summary}. Nothing was removed: another staff member with "
                f"the permission approves it with `manage.py approvals approve {asked.pk} --as USERNAME`."
            )
