"""Database errors: how one is shown to a person (its first line, nothing else), whether it
means the connection is gone, and dropping broken connections."""

import contextlib


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
