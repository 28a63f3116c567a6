from provisioning.drift.triggergen import sync_trigger_sql
from provisioning.engine import triggergen

from ._base import ProvisioningCommand


class Command(ProvisioningCommand):
    help = (
        "Print a handle_new_user() function and on_auth_user_created trigger generated from the "
        "spec and the live catalog, for review and use as a migration. Runs nothing but reads. "
        "With --sync-on-update, also an AFTER UPDATE trigger on auth.users that keeps the columns "
        "the spec copies from the auth user (the email, ...) in step."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--sync-on-update",
            action="store_true",
            help="also generate the update trigger that keeps copied values in step",
        )

    def handle(self, *args, sync_on_update: bool = False, **options):
        self.stdout.write(triggergen.trigger_sql(), ending="")
        if sync_on_update:
            self.stdout.write(sync_trigger_sql(), ending="")
