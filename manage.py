#!/usr/bin/env python
"""Django's command-line utility for eloity-admin."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "eloity_admin.settings")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line(sys.argv)
    except ImproperlyConfigured as exc:
        # A missing or weak setting is the operator's to fix: say which, in one line.
        sys.stderr.write(f"ImproperlyConfigured: {exc}\n")
        sys.exit(2)


if __name__ == "__main__":
    main()
