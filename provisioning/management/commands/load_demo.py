"""`manage.py load_demo`: the Supabase-like demo schema and seeded sign-ups, only on a
database eloity-admin created itself (the embedded one, or one made by
`--create-database NAME` on the server DATABASE_URL points at)."""

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, connections

from provisioning import demo
from provisioning.errors import first_line


class Command(BaseCommand):
    help = (
        "Build the Supabase-like demo schema and seed demo sign-ups. Idempotent. "
        "Refuses any database eloity-admin did not create itself."
    )

    def add_arguments(self, parser):
        parser.add_argument("--users", type=int, default=500, help="sign-ups to seed (default 500, at least 50)")
        parser.add_argument(
            "--reset",
            action="store_true",
            help="drop the demo tables and seed again, in one transaction (interrupted: the old demo stays)",
        )
        parser.add_argument(
            "--shape",
            choices=sorted(demo.SHAPES),
            default="eloity",
            help="eloity (default): the tables the Eloity trigger expects; chained: profiles and wallets "
            "reference public.users, whose password column is NOT NULL with no default",
        )
        parser.add_argument(
            "--auth-events",
            type=int,
            metavar="N",
            help="fill auth.audit_log_entries up to N entries about the demo's users (a year of sign-ins and "
            "refreshes, set-based; idempotent), e.g. --users 1000000 --auth-events 10000000",
        )
        parser.add_argument(
            "--create-database",
            metavar="NAME",
            help="create a new database NAME on the same server, mark it as a demo, migrate and seed it "
            "(refuses an existing name)",
        )

    def handle(
        self,
        *args,
        users: int,
        reset: bool,
        shape: str,
        create_database: str | None,
        auth_events: int | None = None,
        **options,
    ):
        if users < 50:
            raise CommandError("--users must be at least 50", returncode=2)
        if auth_events is not None and auth_events < 0:
            raise CommandError("--auth-events must not be negative", returncode=2)
        events_added = 0
        default = connections["default"]
        home = default.settings_dict["NAME"]
        try:
            if create_database:
                demo.create_demo_database(create_database)
                # The rest of this command works on the new database.
                default.close()
                default.settings_dict["NAME"] = create_database
                call_command("migrate", interactive=False, verbosity=0)
            try:
                # One transaction: an interrupted --reset leaves the previous demo intact.
                added = demo.load(users, shape, reset=reset)
            except KeyboardInterrupt:
                raise CommandError("interrupted: the demo tables are as they were", returncode=130) from None
            if auth_events is not None:
                events_added = demo.add_auth_events(auth_events)
            staff = demo.ensure_demo_staff()
            total = demo.auth_user_count()
        except (demo.NotADemoDatabase, demo.CannotCreateDemoDatabase) as exc:
            raise CommandError(str(exc), returncode=2) from exc
        except DatabaseError as exc:
            raise CommandError(f"database error: {first_line(exc)}", returncode=2) from exc
        finally:
            if create_database:
                default.close()
                default.settings_dict["NAME"] = home
        if create_database:
            self.stdout.write(
                self.style.SUCCESS(f"Created demo database {create_database}.")
                + f" Point DATABASE_URL at it (same server and user, database {create_database}) to use it."
            )
        if shape != "eloity":
            self.stdout.write(f"App tables in the {shape} shape.")
        if added:
            self.stdout.write(self.style.SUCCESS(f"Seeded {added} demo sign-ups."))
        else:
            self.stdout.write(f"Demo data already loaded ({total} sign-ups); nothing seeded.")
        if auth_events is not None:
            self.stdout.write(
                f"Added {events_added} auth events (auth.audit_log_entries holds at least {auth_events})."
                if events_added
                else f"auth.audit_log_entries already holds {auth_events} entries or more; none added."
            )
        self.stdout.write("Demo logins:")
        for username, password, group in staff:
            self.stdout.write(f"  {username} / {password}  ({group})")
