"""manage.py account ACTION --user ID_OR_EMAIL --reason "..." : the account actions of the
user's page, from the command line (docs/fixing-accounts.md)."""

from django.core.management.base import CommandError

from provisioning.account_actions import services
from provisioning.account_actions.client import AccountActionFailed, unavailable_reason
from provisioning.account_actions.selectors import find_user
from provisioning.actors import Actor
from provisioning.approvals import kinds as approval_kinds
from provisioning.approvals import services as approvals
from provisioning.ids import parse_uuid

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
        "done, 1 when Supabase Auth refused or failed, 2 on bad arguments, missing settings or a database error. "
        "While APPROVALS is on, delete, remove-mfa and a ban longer than 7 days become a request another staff "
        "member approves (`manage.py approvals approve ID --as USERNAME`): the request's number is printed, exit 0."
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
        parser.add_argument(
            "--as",
            dest="as_user",
            metavar="USERNAME",
            help="ask as this staff account, when the action needs approval (default: the OS user)",
        )

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
            kind = approvals.approvals_on() and approval_kinds.account_kind(action, duration=kwargs.get("duration"))
        except ValueError as exc:
            raise CommandError(str(exc), returncode=EXIT_BAD_INPUT) from None
        if kind:
            return self._ask(kind, options, **kwargs)
        try:
            result = service(**kwargs)
        except ValueError as exc:
            raise CommandError(str(exc), returncode=EXIT_BAD_INPUT) from None
        except AccountActionFailed as exc:
            code = EXIT_BAD_INPUT if exc.kind in ("unavailable", "database") else EXIT_SOME_FAILED
            raise CommandError(f"{exc} (audit event {getattr(exc, 'audit_event_id', '-')})", returncode=code) from None
        self.stdout.write(f"{result.summary} (audit event {result.audit_event_id})")

    def _ask(self, kind, options, *, actor, user_id, reason, **rest):
        """The two-person rule: the action becomes a request another staff member with the
        same permission approves (it then runs, as them). Prints its number; nothing runs."""
        from .approvals import staff_actor

        actor = staff_actor(options["as_user"]) if options["as_user"] else actor
        why_not = unavailable_reason()
        if why_not:
            raise CommandError(f"nothing was asked: Supabase Auth is {why_not}", returncode=EXIT_BAD_INPUT)
        if rest.get("factor_id") and parse_uuid(rest["factor_id"]) is None:
            raise CommandError(f"--factor {rest['factor_id']!r} is not a factor id", returncode=EXIT_BAD_INPUT)
        params = approval_kinds.account_params(user_id=user_id, reason=reason, requested_by=actor.username, **rest)
        try:
            asked = approvals.request_approval(
                actor=actor, kind=kind, params=params, reason=reason, target_user_id=user_id
            )
        except ValueError as exc:
            raise CommandError(f"{exc} (--reason)", returncode=EXIT_BAD_INPUT) from None
        except approvals.ApprovalDenied as exc:
            raise CommandError(str(exc), returncode=EXIT_SOME_FAILED) from None
        self.stdout.write(
            f"Asked for approval: request {asked.pk} ({asked.summary}). Nothing has run yet: another staff member "
            f"with the permission approves it with `manage.py approvals approve {asked.pk} --as USERNAME`."
        )
