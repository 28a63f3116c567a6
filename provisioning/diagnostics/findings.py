"""What a check finds, and the vocabulary every diagnostics module shares.

A `Check` has a status (ok / warning / problem), what was found and what to do; `combine`
folds several findings into one check. Also here: how a database error is described
(`error_details`) and whether a table can be read by its key column (`has_key_column`),
because several checks need each.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from django.db import DatabaseError, connection, transaction
from psycopg import sql

from provisioning.engine import catalog
from provisioning.spec import TableSpec

OK = "ok"
WARNING = "warning"
PROBLEM = "problem"
STATUSES = (OK, WARNING, PROBLEM)
_RANK = {OK: 0, WARNING: 1, PROBLEM: 2}

#: Where Supabase keeps its sign-ups.
AUTH_SCHEMA, AUTH_TABLE = "auth", "users"
#: How many sample rows a check shows.
SAMPLE = 5

#: A check whose fix is the generated sign-up function sets `details[GENERATED_TRIGGER]`;
#: the health page then shows that SQL with it (collapsed, with a copy button).
GENERATED_TRIGGER = "generated_trigger"
#: How advice names that SQL, true on the page and on the command line alike.
GENERATED_SQL = (
    "the generated sign-up function and trigger (“Generated SQL” under this check on the health page; "
    "`manage.py provisioning_trigger_sql` prints the same)"
)


@dataclass
class Check:
    """One finding. `details` is JSON-ready; the page shows its `definition`, `statements`
    and `rows` keys specially."""

    name: str
    status: str
    found: str
    advice: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == OK

    def as_dict(self) -> dict:
        return asdict(self)


def counted_reasons(counts: dict[str, int]) -> str:
    """`{reason: n}` as `12 x reason; 3 x other reason`, the most frequent first."""
    return "; ".join(f"{n} x {reason}" for reason, n in sorted(counts.items(), key=lambda kv: -kv[1]))


def worst(statuses) -> str:
    return max(statuses, key=_RANK.__getitem__, default=OK)


def combine(name: str, findings: list[tuple[str, str, str]], ok_text: str, details: dict) -> Check:
    """A check from (status, found, advice) findings: the worst status, every finding."""
    if not findings:
        return Check(name, OK, ok_text, "", details)
    return Check(
        name,
        worst(f[0] for f in findings),
        " ".join(f[1] for f in findings),
        " ".join(dict.fromkeys(f[2] for f in findings if f[2])),
        details,
    )


def error_details(exc: DatabaseError) -> dict[str, str]:
    """What the database said: SQLSTATE, message, detail, hint, context ("" where absent)."""
    cause = exc.__cause__
    diag = getattr(cause, "diag", None)
    message = (getattr(diag, "message_primary", None) or str(exc).strip().splitlines()[0]) if str(exc) else ""
    return {
        "sqlstate": getattr(cause, "sqlstate", None) or "",
        "message": message or exc.__class__.__name__,
        "detail": getattr(diag, "message_detail", None) or "",
        "hint": getattr(diag, "message_hint", None) or "",
        "context": getattr(diag, "context", None) or "",
    }


def has_key_column(spec: TableSpec) -> bool:
    """The app table exists and has the column that ties its rows to auth users."""
    return spec.key in catalog.columns(spec.schema, spec.name)


class _RolledBack(Exception):
    pass


def read_rolled_back(query: sql.Composable, params=None, *, timeout: str, setup=()) -> list[tuple]:
    """Run `query` after the `setup` statements ((statement, params) pairs: a role, settings)
    in a savepoint bounded by `timeout` that is always rolled back, whatever the query did,
    settings of the session included; return its rows. Raises DatabaseError when the
    database refuses it."""
    rows: list[tuple] = []
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql.SQL("SET LOCAL statement_timeout = {}").format(sql.Literal(timeout)))
            for statement, statement_params in setup:
                cursor.execute(statement, statement_params)
            cursor.execute(query, params)
            rows = cursor.fetchall()
            raise _RolledBack
    except _RolledBack:
        pass
    return rows
