"""The demo database: a Supabase-like schema, the sign-up trigger, and seeded sign-ups.

Everything here writes to `auth` and `public`, so it runs only on a database that carries
the demo marker: the embedded database eloity-admin created itself, or a test database.
Demo rows must never reach a real project.
"""

from __future__ import annotations

import re
from pathlib import Path

from django.db import connection, transaction

from eloity_admin.embedded import DEMO_MARKER

SQL_DIR = Path(__file__).resolve().parent / "sql"
#: The Supabase-like schema, in the order it is built: auth.users, the app tables, the trigger.
SCHEMA_SCRIPTS = ("auth_schema.sql", "app_schema.sql", "trigger.sql")
#: The demo's shapes of the app tables: as the Eloity trigger expects them, or "chained"
#: (profiles and wallets reference public.users, whose `password` nobody fills), applied
#: after seeding so the seed's own sign-ups still go through the trigger.
SHAPES = {"eloity": (), "chained": ("chained_shape.sql",)}
DEMO_STAFF = (
    # username, password, group
    ("support", "support-demo-password", "Support provisioners"),
    ("viewer", "viewer-demo-password", "Support viewers"),
)


#: The addresses of the original incident report: the seed puts them in the stretch of
#: sign-ups whose profiles the drifted trigger skipped (sql/demo_seed.sql).
INCIDENT_EMAILS = (
    "eloityhq@gmail.com",
    "test@example.com",
    "devilaid1900@gmail.com",
    "solozikedi@gmail.com",
    "fushjones@gmail.com",
    "brochrisjerry@gmail.com",
    "faroukarogundade@gmail.com",
)


class NotADemoDatabase(Exception):
    pass


class CannotCreateDemoDatabase(Exception):
    pass


#: A new demo database's name: a plain lower-case identifier.
DATABASE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}\Z")


def create_demo_database(name: str) -> None:
    """Create database `name` on the server the dashboard is connected to, marked as a demo
    (so `load_demo` may seed it). Refuses a name that exists: an existing database is never
    marked, whoever owns it. Needs the CREATEDB privilege."""
    from psycopg import sql

    if not DATABASE_NAME.match(name or ""):
        raise CannotCreateDemoDatabase(
            f"{name!r} is not a plain database name (lower-case letters, digits and _, at most 63)"
        )
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        if cursor.fetchone():
            raise CannotCreateDemoDatabase(f"database {name} already exists: choose a new name")
        cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        cursor.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(name), sql.Literal(DEMO_MARKER)))


def read_sql(name: str) -> str:
    return (SQL_DIR / name).read_text()


def is_demo_database() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = current_database()"
        )
        row = cursor.fetchone()
    return bool(row) and row[0] == DEMO_MARKER


def mark_as_demo_database() -> None:
    """Mark the current database as a throwaway demo. For databases eloity-admin created."""
    from psycopg import sql

    with connection.cursor() as cursor:
        cursor.execute("SELECT current_database()")
        (name,) = cursor.fetchone()
        cursor.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(name), sql.Literal(DEMO_MARKER)))


def require_demo_database() -> None:
    if not is_demo_database():
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_database()")
            (name,) = cursor.fetchone()
        raise NotADemoDatabase(
            f"refusing to touch database {name!r}: it is not the demo database eloity-admin created "
            "(demo rows must never reach a real project)"
        )


@transaction.atomic
def install_schema() -> None:
    """Create auth.users, the app tables and the sign-up trigger. Idempotent."""
    require_demo_database()
    with connection.cursor() as cursor:
        for name in SCHEMA_SCRIPTS:
            cursor.execute(read_sql(name))


def auth_user_count() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM auth.users")
        return cursor.fetchone()[0]


@transaction.atomic
def seed(users: int) -> int:
    """Seed `users` demo sign-ups unless auth.users already has rows. Returns rows added."""
    require_demo_database()
    if users < 50:
        raise ValueError("the demo needs at least 50 users")
    if auth_user_count():
        return 0
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('eloity.demo_users', %s, true)", [str(users)])
        cursor.execute(read_sql("demo_seed.sql"))
        # What Auth keeps of these accounts: identities, sessions, factors, events.
        cursor.execute(read_sql("auth_activity_seed.sql"))
    return auth_user_count()


@transaction.atomic
def add_auth_events(total: int) -> int:
    """Fill auth.audit_log_entries up to `total` entries about the demo's users, set-based
    (sql/auth_events_seed.sql). Idempotent. Returns entries added."""
    require_demo_database()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM auth.audit_log_entries")
        (before,) = cursor.fetchone()
        if before >= total:
            return 0
        cursor.execute("SELECT set_config('eloity.demo_auth_events', %s, true)", [str(total)])
        cursor.execute(read_sql("auth_events_seed.sql"))
        cursor.execute("SELECT count(*) FROM auth.audit_log_entries")
        return cursor.fetchone()[0] - before


def apply_shape(shape: str) -> None:
    """Give the demo's app tables one of SHAPES (idempotent)."""
    require_demo_database()
    with connection.cursor() as cursor:
        for name in SHAPES[shape]:
            cursor.execute(read_sql(name))


@transaction.atomic
def drop_demo_tables() -> None:
    """Drop the demo's auth and app tables (and the trigger function)."""
    require_demo_database()
    with connection.cursor() as cursor:
        cursor.execute(
            "DROP TABLE IF EXISTS public.users, public.profiles, public.wallets CASCADE;"
            "DROP FUNCTION IF EXISTS public.handle_new_user() CASCADE;"
            "DROP SCHEMA IF EXISTS auth CASCADE;"
        )


def load(users: int, shape: str = "eloity", *, reset: bool = False) -> int:
    """What `load_demo` does to the demo tables, in one transaction: with `reset`, drop them;
    then build the schema, seed `users` sign-ups (unless auth.users has rows) and give the
    app tables `shape`. Returns rows added.

    All or nothing (DDL is transactional in PostgreSQL): an error or Ctrl+C part way, even
    after the drop, leaves the previous demo as it was. Until it commits, a reset holds the
    dropped tables' locks, so the dashboard waits for the new demo instead of seeing none."""
    if shape not in SHAPES:
        raise ValueError(f"unknown demo shape {shape!r}: one of {', '.join(sorted(SHAPES))}")
    with transaction.atomic():
        require_demo_database()
        if reset:
            drop_demo_tables()
        install_schema()
        added = seed(users)
        apply_shape(shape)
    return added


def ensure_demo_staff() -> list[tuple[str, str, str]]:
    """Create the demo staff logins (idempotent); return (username, password, group)."""
    from django.contrib.auth.models import Group, User

    require_demo_database()
    for username, password, group_name in DEMO_STAFF:
        user, created = User.objects.get_or_create(username=username, defaults={"is_staff": True})
        if created:
            user.set_password(password)
            user.save()
        user.groups.add(Group.objects.get(name=group_name))
    return list(DEMO_STAFF)
