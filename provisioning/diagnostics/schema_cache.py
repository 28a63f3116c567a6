"""PostgREST's `Could not find the 'X' column of 'T' in the schema cache`: is it schema drift
or a stale cache? And the reload (`NOTIFY pgrst, 'reload schema'`), audited."""

from __future__ import annotations

import difflib
import re
from typing import Any

from django.db import connection, transaction

from provisioning.actors import Actor
from provisioning.diagnostics.audit import Action, Outcome, record
from provisioning.diagnostics.findings import PROBLEM, WARNING, Check
from provisioning.engine import catalog, services
from provisioning.models import AuditEvent

_SCHEMA_CACHE = re.compile(
    r"could not find the '(?P<column>[^']+)' column of '(?P<table>[^']+)' in the schema cache", re.IGNORECASE
)
_DOTTED = re.compile(r"^(?:(?P<schema>\w+)\.)?(?P<table>\w+)\.(?P<column>\w+)$")
_IDENTIFIER = re.compile(r"^\w{1,63}$")


class BadQuestion(ValueError):
    """The schema cache question could not be understood (the message says why)."""


def parse_schema_cache_question(text: str, table: str = "") -> tuple[str, str, str]:
    """(schema, table, column) from a PostgREST message (`Could not find the 'id' column of
    'profiles' in the schema cache`), `table.column`, or a column name plus `table`."""
    text = (text or "").replace("\x00", "").strip()[:2000]
    table = (table or "").replace("\x00", "").strip()
    schema = "public"
    match = _SCHEMA_CACHE.search(text)
    if match:
        column, table_text = match["column"], match["table"]
        if "." in table_text:
            schema, table_text = table_text.split(".", 1)
        table = table_text
    elif _DOTTED.match(text):
        dotted = _DOTTED.match(text)
        schema, table, column = dotted["schema"] or "public", dotted["table"], dotted["column"]
    elif text:
        column = text.strip("'\"")
    else:
        raise BadQuestion("Paste the API's error message, or give a column name.")
    if not table:
        raise BadQuestion("Which table? Give it with the column (profiles.id) or paste the whole message.")
    for label, value in (("schema", schema), ("table", table), ("column", column)):
        if not _IDENTIFIER.match(value):
            raise BadQuestion(f"“{value[:80]}” is not a plain {label} name.")
    return schema, table, column


def closest_names(name: str, candidates: list[str], n: int = 3) -> list[str]:
    """The candidates most like `name`: those holding it as a word (`id` -> `user_id`) first,
    then difflib's closest matches."""
    words = [c for c in candidates if name in c.split("_") and c != name]
    similar = difflib.get_close_matches(name, candidates, n=n, cutoff=0.4)
    return list(dict.fromkeys(words + similar))[:n]


def check_schema_cache(text: str, table: str = "") -> Check:
    """Which cause a PGRST204 `Could not find the 'X' column of 'T' in the schema cache` has:
    the column does not exist (schema drift) or exists (PostgREST's cache is stale).
    Raises BadQuestion when `text` cannot be understood."""
    schema, table, column = parse_schema_cache_question(text, table)
    name = "PostgREST schema cache"
    qualified = f"{schema}.{table}"
    live = catalog.columns(schema, table)
    details: dict[str, Any] = {"schema": schema, "table": table, "column": column}
    if not live:
        close = closest_names(table, catalog.tables(schema))
        details["closest_tables"] = close
        hint = f" Closest tables: {', '.join(close)}." if close else ""
        return Check(
            name,
            PROBLEM,
            f"There is no table {qualified}: the client names a table this database does not have.{hint}",
            "Fix the client's table name; reloading the cache will not help.",
            details,
        )
    if column in live:
        details["column_type"] = live[column].data_type
        return Check(
            name,
            WARNING,
            f"{qualified}.{column} exists ({live[column].data_type}): PostgREST's schema cache is stale.",
            "Reload PostgREST's schema cache (the button below, or `NOTIFY pgrst, 'reload schema';`), then retry.",
            details,
        )
    close = closest_names(column, list(live))
    details["closest_columns"] = close
    hint = f" Closest existing columns: {', '.join(close)}." if close else ""
    return Check(
        name,
        PROBLEM,
        f"{qualified} has no column {column}: this is schema drift, not a stale cache.{hint}",
        f"Fix the client (backfill script, app) to write a column {qualified} has"
        + (f", probably {close[0]}" if close else "")
        + "; reloading the cache will not help.",
        details,
    )


def reload_schema_cache(*, actor: Actor) -> AuditEvent:
    """Send `NOTIFY pgrst, 'reload schema'` (delivered when the transaction commits) and
    record it. Raises services.ProvisioningDenied (after recording a denied event) when
    `actor` lacks provisioning.provision_users."""
    services.require_provisioning(actor=actor, action=Action.RELOAD_SCHEMA_CACHE, what="reload the schema cache")
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("NOTIFY pgrst, 'reload schema'")
        return record(actor, Action.RELOAD_SCHEMA_CACHE, Outcome.SUCCEEDED, {"channel": "pgrst"})
