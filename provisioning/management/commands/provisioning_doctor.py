import json
import sys
import textwrap

from django.core.management.base import CommandError

from provisioning import diagnostics
from provisioning.actors import Actor

from ._base import EXIT_BAD_INPUT, EXIT_SOME_FAILED, ProvisioningCommand


class Command(ProvisioningCommand):
    help = (
        "Provisioning health: the sign-up trigger and function, schema drift, key indexes, orphans, "
        "duplicates, coverage. Exit 0 when no check finds a problem (warnings allowed), 1 when one "
        "does, 2 when the checks cannot run (no database, no permission on the catalog or auth.users)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="print the report as JSON")
        parser.add_argument(
            "--simulate-signup",
            action="store_true",
            help="also insert one synthetic auth user in a transaction that is always rolled back (audited)",
        )
        parser.add_argument(
            "--schema-cache",
            metavar="MESSAGE",
            help="instead, answer a PostgREST 'not in the schema cache' error (PGRST204 or PGRST205, as pasted, "
            "or table.column): drift, a schema the API does not serve, or a stale cache",
        )
        parser.add_argument("--table", default="", help="with --schema-cache and a bare column name: its table")

    def handle(self, *args, **options):
        if options["schema_cache"] is not None:
            try:
                check = diagnostics.check_schema_cache(options["schema_cache"], options["table"])
            except diagnostics.BadQuestion as exc:
                raise CommandError(str(exc), returncode=EXIT_BAD_INPUT) from exc
            self._emit(check, self._print_check, as_json=options["json"])
            return
        report = diagnostics.run_checks(
            simulate_signup=options["simulate_signup"], actor=Actor.command_line(), raise_errors=True
        )
        self._emit(report, self._print, as_json=options["json"])

    def _emit(self, result, print_text, *, as_json: bool) -> None:
        """Print a report or one check, as JSON or text; exit 1 when it found a problem."""
        if as_json:
            self.stdout.write(json.dumps(result.as_dict(), indent=2, default=str))
        else:
            print_text(result)
        if result.status == diagnostics.PROBLEM:
            sys.exit(EXIT_SOME_FAILED)

    def _print_check(self, check: diagnostics.Check) -> None:
        self.stdout.write(f"[{check.status}] {check.name}")
        self.stdout.write(textwrap.fill(check.found, 100, initial_indent="  ", subsequent_indent="  "))
        if check.advice:
            self.stdout.write(
                textwrap.fill(check.advice, 100, initial_indent="  what to do: ", subsequent_indent="    ")
            )

    def _print(self, report: diagnostics.Report) -> None:
        counts = ", ".join(f"{n} {status}" for status, n in report.counts.items())
        self.stdout.write(f"Provisioning health: {report.status} ({counts})")
        for check in report.checks:
            self.stdout.write("")
            self._print_check(check)
