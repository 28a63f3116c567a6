"""`manage.py provisioning_watchdog [--grace 60] [--window 86400] [--heal]`: late sign-ups.

Exit codes for cron: 0 nothing late, 1 late sign-ups found (alerted once per incident),
2 it could not run. See provisioning/hooks/watchdog.py.
"""

from __future__ import annotations

import sys

from django.core.management.base import CommandError

from provisioning.hooks import watchdog
from provisioning.management.commands._base import EXIT_BAD_INPUT, EXIT_SOME_FAILED, ProvisioningCommand


class Command(ProvisioningCommand):
    help = "Find live sign-ups that still miss app rows after a grace period; alert once per incident."

    def add_arguments(self, parser):
        parser.add_argument("--grace", type=int, default=60, help="seconds a sign-up may lack rows (default 60)")
        parser.add_argument("--window", type=int, default=86_400, help="only sign-ups this recent, in seconds")
        parser.add_argument("--heal", action="store_true", help="provision the late sign-ups (audited)")

    def handle(self, *args, grace: int, window: int, heal: bool, **options):
        if grace < 0 or window <= grace:
            raise CommandError("--grace must be 0 or more and --window larger than it", returncode=EXIT_BAD_INPUT)
        result = watchdog.run(grace=grace, window=window, heal=heal, notify=self._notify)
        finding = result.finding
        if result.healed:
            self.stdout.write(f"healed: {', '.join(f'{n} {t}' for t, n in result.healed.items() if n) or 'nothing'}")
        if finding.awaiting_confirmation:
            self.stdout.write(
                f"{finding.awaiting_confirmation} unconfirmed sign-up(s) without rows: expected, provisioning waits "
                "for confirmation"
            )
        if finding.count:
            self.stdout.write(f"{finding.count} late sign-up(s) still miss rows")
            sys.exit(EXIT_SOME_FAILED)
        self.stdout.write("no late sign-ups")

    def _notify(self, text: str) -> None:
        watchdog.send_alert(text, log_if_unsent=False)  # this command prints it anyway
        self.stdout.write(f"alert: {text}")
