"""manage.py account ACTION --user ID_OR_EMAIL --reason "..." : the account actions of the
user's page, from the command line (docs/fixing-accounts.md)."""

from django.core.management.base import CommandError

from provisioning.account_actions import services
from provisioning.account_actions.client import AccountActionFailed
from provisioning.account_actions.selectors import find_user
from provisioning.actors import Actor

from ._base import EXIT_BAD_INPUT, EXIT_SOME_FAILED, ProvisioningCommand

#: Subcommand -> what it does (the service: services.BY_NAME).
HELP = {
    "confirm": "mark the user's email as confirmed",
    "resend": "e-mail the sign-up confirmation again (through /resend)",
    "reset-password": "e-mail a password-reset link to the user (through /recover)",
    "ban": "ban for --duration (30m, 24h, 7d, forever) and sign out everywhere",
    "unban": "end a ban",
    "signout": "end every session (refresh tokens go with them)",
    "remove-mfa": "remove one MFA factor (--factor ID) or all (--all)",
    "delete": "delete the user with their app rows (--soft: Auth's soft delete)",
}


class Command(ProvisioningCommand):
    help = (
        "Fix an account through Supabase Auth: confirm, resend, reset-password, ban, unban, signout, "
        "remove-mfa, delete. Every action needs --reason and is recorded in the audit log. Exit 0 when "
        "done, 1 when Supabase Auth refused or failed, 2 on bad arguments, missing settings or a database error."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "action", choices=list(services.BY_NAME), help="; ".join(f"{k}: {v}" for k, v in HELP.items())
        )
        parser.add_argument("--user", required=True, metavar="ID_OR_EMAIL", help="the auth user's id or exact email")
        parser.add_argument("--reason", required=True, help="why (kept in the audit log)")
        parser.add_argument("--duration", help="ban: how long (30m, 24h, 7d, forever)")
        which = parser.add_mutually_exclusive_group()
        which.add_argument("--factor", metavar="FACTOR_ID", help="remove-mfa: the factor's id")
        which.add_argument("--all", action="store_true", help="remove-mfa: every factor")
        parser.add_argument("--soft", action="store_true", help="delete: soft delete (Auth keeps the row, marked)")

    def handle(self, *args, **options):
        action = options["action"]
        service = services.BY_NAME[action][1]
        user_id, why = find_user(options["user"])
        if user_id is None:
            raise CommandError(why, returncode=EXIT_BAD_INPUT)
        kwargs = {"actor": Actor.command_line(), "user_id": user_id, "reason": options["reason"]}
        if action == "ban":
            if not options["duration"]:
                raise CommandError("ban needs --duration (30m, 24h, 7d or forever)", returncode=EXIT_BAD_INPUT)
            kwargs["duration"] = options["duration"]
        if action == "remove-mfa":
            if not (options["factor"] or options["all"]):
                raise CommandError("remove-mfa needs --factor ID or --all", returncode=EXIT_BAD_INPUT)
            kwargs["factor_id"] = options["factor"]
            kwargs["every"] = options["all"]
        if action == "delete":
            kwargs["soft"] = options["soft"]
        try:
            result = service(**kwargs)
        except ValueError as exc:
            raise CommandError(str(exc), returncode=EXIT_BAD_INPUT) from None
        except AccountActionFailed as exc:
            code = EXIT_BAD_INPUT if exc.kind in ("unavailable", "database") else EXIT_SOME_FAILED
            raise CommandError(f"{exc} (audit event {getattr(exc, 'audit_event_id', '-')})", returncode=code) from None
        self.stdout.write(f"{result.summary} (audit event {result.audit_event_id})")
