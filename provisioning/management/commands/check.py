"""`manage.py check`: Django's own checks, plus the spec file against the live database.

Django's check exits 1 on an error; a spec file that cannot be used is bad input, exit 2,
like every other command (`_base.require_usable_spec`). The file's own mistakes are a
system check (`provisioning.E001`, apps.py), so every command meets them first.
"""

from django.core.management.base import CommandError, SystemCheckError
from django.core.management.commands import check

from provisioning.management.commands._base import EXIT_BAD_INPUT, require_usable_spec


class Command(check.Command):
    def handle(self, *app_labels, **options):
        try:
            super().handle(*app_labels, **options)
        except SystemCheckError as exc:
            raise CommandError(str(exc).strip(), returncode=EXIT_BAD_INPUT) from exc
        require_usable_spec()
