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
#: PGRST205: `Could not find the table 'public.profiles' in the schema cache`.
_MISSING_TABLE = re.compile(r"could not find the table '(?P<table>[^']+)' in the schema cache", re.IGNORECASE)
#: What PostgREST serves when `pgrst.db_schemas` is not set: Supabase's default "Exposed
#: schemas" (Settings -> API).
DEFAULT_EXPOSED_SCHEMAS = ("public", "graphql_public")
#: When a reload does not help.
#: Where the reload is: the button sits under Actions, above the answer on the health page.
RELOAD = (
    "Reload PostgREST's schema cache (the “Reload PostgREST schema cache” button under Actions on the health "
    "page, or `NOTIFY pgrst, 'reload schema';`), then retry. "
)
RELOAD_DID_NOT_HELP = (
    "If a reload does not help: PostgREST may not listen on the `pgrst` channel (`db-channel-enabled` off, or a "
    "connection pooler in front of it that drops LISTEN): restart the API (Settings -> API, or the project); "
    "and a view or function that fails to load stops the whole cache from reloading: look for a PGRST002 or a "
    "load error in the API logs, and fix or drop that object."
)
_DOTTED = re.compile(r"^(?:(?P<schema>\w+)\.)?(?P<table>\w+)\.(?P<column>\w+)$")
_IDENTIFIER = re.compile(r"^\w{1,63}$")


class BadQuestion(ValueError):
    """The schema cache question could not be understood (the message says why)."""


def parse_schema_cache_question(text: str, table: str = "") -> tuple[str, str, str]:
    """(schema, table, column) from a PostgREST message (PGRST204 `Could not find the 'id'
    column of 'profiles' in the schema cache`; PGRST205 `Could not find the table
    'public.profiles' in the schema cache`, column ""), `table.column`, or a column name
    plus `table`."""
    text = (text or "").replace("\x00", "").strip()[:2000]
    table = (table or "").replace("\x00", "").strip()
    schema = "public"
    match = _SCHEMA_CACHE.search(text)
    missing_table = _MISSING_TABLE.search(text)
    if missing_table:
        column, table = "", missing_table["table"]
        if "." in table:
            schema, table = table.split(".", 1)
    elif match:
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
        if label == "column" and missing_table:
            continue
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
    if not column:
        return _check_table(name, schema, table, bool(live), details)
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
            RELOAD + RELOAD_DID_NOT_HELP,
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


def exposed_schemas() -> tuple[list[str], str]:
    """The schemas the API serves: `pgrst.db_schemas` as set on the `authenticator` role (where
    Supabase keeps "Exposed schemas"), or Supabase's default; and where that came from."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT cfg FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole "
            "CROSS JOIN LATERAL unnest(s.setconfig) AS cfg "
            "WHERE r.rolname = 'authenticator' AND cfg LIKE 'pgrst.db_schemas=%%' "
            "AND s.setdatabase IN (0, (SELECT oid FROM pg_database WHERE datname = current_database())) "
            "ORDER BY s.setdatabase DESC LIMIT 1"
        )
        row = cursor.fetchone()
    if row is None:
        return list(DEFAULT_EXPOSED_SCHEMAS), "Supabase's default (pgrst.db_schemas is not set)"
    value = row[0].split("=", 1)[1]
    return [part.strip().strip('"') for part in value.split(",") if part.strip()], "pgrst.db_schemas"


def _check_table(name: str, schema: str, table: str, exists: bool, details: dict[str, Any]) -> Check:
    """PGRST205 `Could not find the table 'schema.table' in the schema cache`: the table does
    not exist, lives in a schema the API does not serve, or the cache is stale."""
    qualified = f"{schema}.{table}"
    exposed, source = exposed_schemas()
    details.update({"exposed_schemas": exposed, "exposed_schemas_from": source})
    if not exists:
        elsewhere = [s for s in catalog.schemas_with_table(table) if s != schema]
        close = closest_names(table, catalog.tables(schema))
        details.update({"same_name_in": elsewhere, "closest_tables": close})
        hint = f" A table {table} exists in schema {', '.join(elsewhere)}." if elsewhere else ""
        hint += f" Closest tables in {schema}: {', '.join(close)}." if close else ""
        return Check(
            name,
            PROBLEM,
            f"There is no table {qualified}: the client names a table this database does not have (PGRST205).{hint}",
            "Fix the client's table name (or schema: supabase.schema('...').from('...')); "
            "reloading the cache will not help.",
            details,
        )
    if schema not in exposed:
        statement = (
            "ALTER ROLE authenticator SET pgrst.db_schemas = "
            f"'{', '.join([*exposed, schema])}'; NOTIFY pgrst, 'reload config'; NOTIFY pgrst, 'reload schema';"
        )
        details["sql"] = statement
        return Check(
            name,
            PROBLEM,
            f"{qualified} exists, but the API does not serve schema {schema} "
            f"(exposed: {', '.join(exposed)}, from {source}).",
            f"Add {schema} to Settings -> API -> Exposed schemas (or run, as postgres: `{statement}`), and grant "
            f"USAGE on schema {schema} and the table's privileges to anon/authenticated; or move the table to an "
            "exposed schema.",
            details,
        )
    return Check(
        name,
        WARNING,
        f"{qualified} exists in an exposed schema ({', '.join(exposed)}): PostgREST's schema cache is stale.",
        RELOAD + RELOAD_DID_NOT_HELP,
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
