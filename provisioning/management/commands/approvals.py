"""`manage.py approvals (list|approve ID|refuse ID|expire) [--as USERNAME] [--reason …]`:
the two-person rule from the command line, as on the requests' pages (docs/approvals.md)."""

import json

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from provisioning.actors import Actor
from provisioning.approvals import registry, selectors, services
from provisioning.models import ApprovalRequest, AuditEvent

from ._base import EXIT_BAD_INPUT, EXIT_SOME_FAILED

State = ApprovalRequest.State


def staff_actor(username: str | None) -> Actor:
    """The named, active staff account a decision is made as (CommandError, exit 2, else)."""
    if not username:
        raise CommandError("name the staff account you act as: --as USERNAME", returncode=EXIT_BAD_INPUT)
    user = get_user_model().objects.filter(username=username, is_active=True, is_staff=True).first()
    if user is None:
        raise CommandError(f"no active staff account named {username!r}", returncode=EXIT_BAD_INPUT)
    return Actor(username=user.get_username(), channel=AuditEvent.Channel.CLI, user=user)


def describe(item: ApprovalRequest) -> str:
    return (
        f"#{item.pk}  {item.get_state_display():<22} {item.summary}  "
        f"(asked by {item.requested_by_username}, {item.created_at:%Y-%m-%d %H:%M}; "
        f"expires {item.expires_at:%Y-%m-%d %H:%M %Z}; reason: {item.reason})"
    )


class Command(BaseCommand):
    help = (
        "Requests waiting for a second staff member (the two-person rule): list them, approve one (it runs at once, "
        "as the approver), refuse one (--reason required), or mark the overdue expired. Decisions need --as USERNAME, "
        "a staff account holding the action's permission that did not ask. Exit 0 when done, 1 when it was not "
        "(refused, expired, already decided, failed), 2 on bad arguments."
    )

    def add_arguments(self, parser):
        parser.add_argument("what", choices=["list", "approve", "refuse", "expire"])
        parser.add_argument("id", nargs="?", type=int, help="the request's number (approve, refuse)")
        parser.add_argument("--as", dest="as_user", metavar="USERNAME", help="the staff account deciding")
        parser.add_argument("--reason", default="", help="why (required to refuse)")
        parser.add_argument("--all", action="store_true", help="list: every request, not only those waiting")
        parser.add_argument("--json", action="store_true", help="list: as JSON")

    def handle(self, *args, **options):
        what = options["what"]
        if what == "expire":
            done = services.expire_overdue()
            self.stdout.write(f"{len(done)} request(s) expired." + (f" ({', '.join(map(str, done))})" if done else ""))
            return
        if what == "list":
            services.expire_overdue()
            return self._list(options)
        if options["id"] is None:
            raise CommandError(f"give the request's number: approvals {what} ID", returncode=EXIT_BAD_INPUT)
        actor = staff_actor(options["as_user"])
        if not ApprovalRequest.objects.filter(pk=options["id"]).exists():
            raise CommandError(f"no request #{options['id']}", returncode=EXIT_BAD_INPUT)
        try:
            if what == "approve":
                done = services.approve(actor=actor, request_id=options["id"], reason=options["reason"])
            else:
                done = services.refuse(actor=actor, request_id=options["id"], reason=options["reason"])
        except ValueError as exc:
            raise CommandError(str(exc), returncode=EXIT_BAD_INPUT) from exc
        except (services.ApprovalDenied, services.NotWaiting) as exc:
            raise CommandError(str(exc), returncode=EXIT_SOME_FAILED) from exc
        except registry.UnknownKind as exc:
            raise CommandError(str(exc), returncode=EXIT_SOME_FAILED) from exc
        self.stdout.write(describe(done))
        changed = done.result.get("changed_since_request")
        if done.state == State.RAN:
            self.stdout.write(f"ran: {done.result.get('summary', '')}")
            if isinstance(changed, str):
                self.stdout.write(f"the data changed since the request: it {changed}")
        elif done.state == State.FAILED:
            raise CommandError(f"approved, but the action failed: {done.result.get('error')}", returncode=1)
        elif what == "approve":  # refused unrun: the data changed since the request
            raise CommandError(done.decision_reason, returncode=EXIT_SOME_FAILED)

    def _list(self, options):
        found = ApprovalRequest.objects.all()[:200] if options["all"] else selectors.waiting()
        if options["json"]:
            rows = [
                {
                    "id": item.pk,
                    "kind": item.kind,
                    "state": item.state,
                    "summary": item.summary,
                    "requested_by": item.requested_by_username,
                    "reason": item.reason,
                    "created_at": item.created_at.isoformat(),
                    "expires_at": item.expires_at.isoformat(),
                    "decided_by": item.decided_by_username,
                    "decision_reason": item.decision_reason,
                }
                for item in found
            ]
            self.stdout.write(json.dumps(rows, indent=2))
            return
        lines = [describe(item) for item in found]
        if not services.approvals_on():
            lines.insert(0, "The two-person rule is off (APPROVALS=off): actions run at once.")
        self.stdout.write("\n".join(lines) if lines else "Nothing waiting for approval.")
