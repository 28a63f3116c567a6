import json

from provisioning import selectors

from ._base import ProvisioningCommand


class Command(ProvisioningCommand):
    help = "Auth users, users missing rows per table, and users that cannot be provisioned."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="print JSON")

    def handle(self, *args, json: bool = False, **options):
        counts = selectors.status_counts()
        if json:
            self.stdout.write(_json_dumps(counts.as_dict()))
            return
        self.stdout.write(f"auth users (live, non-anonymous): {counts.auth_users}")
        self.stdout.write(f"fully provisioned:               {counts.fully_provisioned}")
        for table, n in counts.missing.items():
            self.stdout.write(f"missing {table + ':':<24} {n}")
        self.stdout.write(f"missing any:                     {counts.missing_any}")
        total = sum(counts.blocked.values())
        self.stdout.write(f"cannot be provisioned:           {total}")
        for reason, n in counts.blocked.items():
            self.stdout.write(f"  {n:>6}  {reason}")


def _json_dumps(data) -> str:
    return json.dumps(data, indent=2, sort_keys=True)
