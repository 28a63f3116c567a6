from provisioning.engine import triggergen

from ._base import ProvisioningCommand


class Command(ProvisioningCommand):
    help = (
        "Print a handle_new_user() function and on_auth_user_created trigger generated from the "
        "spec and the live catalog, for review and use as a migration. Runs nothing but reads."
    )

    def handle(self, *args, **options):
        self.stdout.write(triggergen.trigger_sql(), ending="")
