from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from provisioning import demo
from provisioning.errors import first_line


class Command(BaseCommand):
    help = (
        "Build the Supabase-like demo schema and seed demo sign-ups. Idempotent. "
        "Refuses any database eloity-admin did not create itself."
    )

    def add_arguments(self, parser):
        parser.add_argument("--users", type=int, default=500, help="sign-ups to seed (default 500, at least 50)")
        parser.add_argument("--reset", action="store_true", help="drop the demo tables first and seed again")

    def handle(self, *args, users: int, reset: bool, **options):
        if users < 50:
            raise CommandError("--users must be at least 50", returncode=2)
        try:
            if reset:
                demo.drop_demo_tables()
            demo.install_schema()
            added = demo.seed(users)
            staff = demo.ensure_demo_staff()
        except demo.NotADemoDatabase as exc:
            raise CommandError(str(exc), returncode=2) from exc
        except DatabaseError as exc:
            raise CommandError(f"database error: {first_line(exc)}", returncode=2) from exc
        if added:
            self.stdout.write(self.style.SUCCESS(f"Seeded {added} demo sign-ups."))
        else:
            self.stdout.write(f"Demo data already loaded ({demo.auth_user_count()} sign-ups); nothing seeded.")
        self.stdout.write("Demo logins:")
        for username, password, group in staff:
            self.stdout.write(f"  {username} / {password}  ({group})")
