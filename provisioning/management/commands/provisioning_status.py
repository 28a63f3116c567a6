import json

from provisioning.engine import selectors

from ._base import ProvisioningCommand


class Command(ProvisioningCommand):
    help = "Auth users, users missing rows per table, and users that cannot be provisioned."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="print JSON")

    def handle(self, *args, **options):
        counts = selectors.status_counts()
        if options["json"]:
            self.stdout.write(json.dumps(counts.as_dict(), indent=2, sort_keys=True))
            return
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
