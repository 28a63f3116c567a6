"""Database errors: how one is shown to a person (its first line, nothing else), whether it
means the connection is gone, and dropping broken connections."""

import contextlib
import re


def first_line(exc: BaseException) -> str:
    """The first line of an error's message (PostgreSQL adds DETAIL/CONTEXT lines below it),
    or the error's class name when it has no message."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else exc.__class__.__name__


#: SQLSTATEs that mean the server is going away or refusing sessions, not that a
#: statement was wrong: admin_shutdown, crash_shutdown, cannot_connect_now.
_SERVER_GOING_AWAY = {"57P01", "57P02", "57P03"}


def connection_lost(exc: BaseException) -> bool:
    """True when `exc` says the database connection is gone (a restart, a failover, a
    pooler that dropped it, `pg_terminate_backend`), so the work should wait and resume,
    not be marked failed. False for errors about a statement or a row, and for timeouts."""
    from django.db import InterfaceError, OperationalError

    cause = exc.__cause__ if exc.__cause__ is not None else exc
    if isinstance(exc, InterfaceError) or cause.__class__.__name__ == "InterfaceError":
        return True
    sqlstate = getattr(cause, "sqlstate", None)
    if sqlstate is None:
        # psycopg gives no SQLSTATE when the server never answered: refused, reset, closed.
        return isinstance(exc, OperationalError) or cause.__class__.__name__ == "OperationalError"
    return sqlstate.startswith("08") or sqlstate in _SERVER_GOING_AWAY


def drop_connections() -> None:
    """Forget every open (possibly broken) connection, so the next query opens a fresh one.
    Closing a connection that is already broken may itself raise: best effort."""
    from django.db import connections

    for conn in connections.all(initialized_only=True):
        with contextlib.suppress(Exception):
            conn.close()


#: "permission denied for table profiles" (SQLSTATE 42501 insufficient_privilege).
_DENIED = re.compile(r"permission denied for (table|sequence|schema) (\S+)")

#: What the runtime role needs on a table (the README's grants): the dashboard's own tables
#: are read and written; the audit log only read and appended to; the app tables read,
#: filled and (orphans) emptied; auth.users only read.
_AUDIT_TABLE = "provisioning_auditevent"


def _ident(name: str) -> str:
    """`name` as SQL writes it: bare when it is a plain lower-case identifier, else quoted."""
    return name if re.fullmatch(r"[a-z_][a-z0-9_]*", name) else '"' + name.replace('"', '""') + '"'


def _needed(schema: str, table: str) -> list[str]:
    from django.conf import settings

    if schema == settings.DJANGO_SCHEMA:
        return ["SELECT", "INSERT"] if table == _AUDIT_TABLE else ["SELECT", "INSERT", "UPDATE", "DELETE"]
    if schema == "auth":
        return ["SELECT"]
    return ["SELECT", "INSERT", "DELETE"]


def missing_grant(exc: BaseException) -> str:
    """For a "permission denied for table|sequence|schema X" error: the GRANT that gives the
    connection's role what it lacks there, as one statement (e.g. `GRANT SELECT ON
    public.profiles TO eloity_admin;`); "" for any other error, or when the catalog cannot be
    read (the connection is in a failed transaction)."""
    from django.db import DatabaseError, connection

    cause = exc.__cause__ if exc.__cause__ is not None else exc
    found = _DENIED.match(first_line(exc))
    if getattr(cause, "sqlstate", None) != "42501" or not found:
        return ""
    kind, name = found.groups()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_user")
            (role,) = cursor.fetchone()
            to_role = _ident(role)
            if kind == "schema":
                return f"GRANT USAGE ON SCHEMA {name} TO {to_role};"
            cursor.execute(
                "SELECT n.nspname, c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.relname = %s AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') ORDER BY n.nspname",
                [name],
            )
            for schema, table, relkind in cursor.fetchall():
                qualified = f"{_ident(schema)}.{_ident(table)}"
                if relkind == "S":
                    cursor.execute("SELECT has_sequence_privilege(%s, 'USAGE')", [qualified])
                    if not cursor.fetchone()[0]:
                        return f"GRANT USAGE, SELECT ON SEQUENCE {qualified} TO {to_role};"
                    continue
                needed = _needed(schema, table)
                cursor.execute(
                    "SELECT array_agg(p ORDER BY o) FROM unnest(%s::text[]) WITH ORDINALITY AS t(p, o) "
                    "WHERE NOT has_table_privilege(%s, p) AND NOT (p = 'SELECT' AND has_any_column_privilege(%s, p))",
                    [needed, qualified, qualified],
                )
                lacking = cursor.fetchone()[0]
                if lacking:
                    if schema == "auth":
                        return f"GRANT SELECT (the README's columns) ON {qualified} TO {to_role};"
                    return f"GRANT {', '.join(lacking)} ON {qualified} TO {to_role};"
    except DatabaseError:
        return ""
    return ""


def describe(exc: BaseException) -> str:
    """An error's first line, and for a missing privilege the GRANT to run (one line)."""
    grant = missing_grant(exc)
    return f"{first_line(exc)}; as postgres, run: {grant}" if grant else first_line(exc)
