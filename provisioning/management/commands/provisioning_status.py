import json

from django.utils import timezone

from provisioning.engine import selectors

from ._base import ProvisioningCommand


class Command(ProvisioningCommand):
    help = "Auth users, users missing rows per table, and users that cannot be provisioned."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="print JSON")
        parser.add_argument(
            "--exact",
            action="store_true",
            help="count live over auth.users (seconds at a million users) instead of reading the provisioning ledger",
        )

    def handle(self, *args, **options):
        counts = selectors.status_counts() if options["exact"] else selectors.ledger_status_counts()
        if options["json"]:
            self.stdout.write(json.dumps(counts.as_dict(), indent=2, sort_keys=True))
            return
        self.stdout.write(freshness(counts))
        self.stdout.write(f"auth users (live, non-anonymous): {counts.auth_users}")
        self.stdout.write(f"fully provisioned:               {counts.fully_provisioned}")
        for table, n in counts.missing.items():
            self.stdout.write(f"missing {table + ':':<24} {n}")
        self.stdout.write(f"missing any:                     {counts.missing_any}")
        if counts.awaiting_confirmation is not None:
            self.stdout.write(
                f"  of which awaiting confirmation: {counts.awaiting_confirmation} (expected: {counts.gate})"
            )
        rows = sum(counts.blocked.values())
        self.stdout.write(f"{'cannot be provisioned (users):':<33}{counts.blocked_users}")
        self.stdout.write(f"{'missing rows they lack:':<33}{rows}")
        if counts.blocked:
            self.stdout.write("users, by table and reason (a user blocked in several tables is in each):")
        for reason, n in counts.blocked.items():
            self.stdout.write(f"  {n:>6}  {reason}")
        if counts.blocked_sample:
            shown = len(counts.blocked_sample)
            first = "first " if shown < rows else ""
            self.stdout.write(f"users that cannot be provisioned, by table ({first}{shown}):")
            for row in counts.blocked_sample:
                self.stdout.write(f"  {row['user_id']}  {row['person']}  {row['table']}: {row['reason']}")


def freshness(counts: selectors.StatusCounts) -> str:
    if counts.as_of is None:
        return "counted live over auth.users just now"
    as_of = timezone.localtime(counts.as_of)
    return (
        f"from the provisioning ledger, as of {as_of:%H:%M:%S} ({as_of:%Y-%m-%d %Z}); "
        "the app's own writes since then are not in it (--exact counts live)"
    )
