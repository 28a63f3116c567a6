"""The update trigger that keeps copied values in step, generated from the spec and the
live catalog (`provisioning_trigger_sql --sync-on-update`), for people to review and apply
as a migration. The dashboard never executes it.

`AFTER UPDATE OF <the auth columns the spec copies> ON auth.users`: when a user changes
their email (or metadata the spec copies), the same columns `sync_values` writes are set,
in the same transaction as the change. Any error (another row holds the new email, a value
that does not fit the column, a trigger on the app table that raises) is logged as a
warning and left to the drift report: an UPDATE trigger that raised would stop the user
from changing their email, or from signing in (Supabase rewrites metadata on OAuth
sign-ins).
"""

from __future__ import annotations

from provisioning.drift.columns import by_table, copied_columns
from provisioning.engine.triggergen import function_and_trigger, quote_ident
from provisioning.spec import AuthColumn, table_spec

FUNCTION = ("public", "sync_user_values")
TRIGGER = "on_auth_user_updated"


def _typed(column) -> str:
    """The auth user's new value as the column's type, without its length (as sync_values)."""
    return f"CAST({column.value.trigger_expression(quote_ident)} AS {column.data_type})"


def sync_trigger_sql() -> str:
    """The function and trigger (see the module doc); a comment alone when the spec copies
    no column from the auth user."""
    grouped = by_table(copied_columns())
    if not grouped:
        return "-- The spec copies no column from the auth user: there is nothing to keep in step.\n"
    read = []
    blocks = []
    for table, columns in grouped.items():
        spec = table_spec(table)
        for c in columns:
            read.append(c.value.column if isinstance(c.value, AuthColumn) else "raw_user_meta_data")
        sets = ",\n            ".join(f"{quote_ident(c.column)} = {_typed(c)}" for c in columns)
        differs = "\n            OR ".join(f"{quote_ident(c.column)} IS DISTINCT FROM {_typed(c)}" for c in columns)
        target = quote_ident(spec.schema, spec.name)
        blocks.append(
            f"""    -- {spec.qualified_name}: {", ".join(c.column for c in columns)}
    BEGIN
        UPDATE {target}
        SET {sets}
        WHERE {quote_ident(spec.key)} = NEW.id
          AND ({differs});
    EXCEPTION WHEN OTHERS THEN
        RAISE WARNING 'eloity-admin: % of user % not synced: %', '{spec.qualified_name}', NEW.id, SQLERRM;
    END;"""
        )
    watched = list(dict.fromkeys(read))
    body = "\n\n".join(blocks)
    when = " OR ".join(f"OLD.{quote_ident(c)} IS DISTINCT FROM NEW.{quote_ident(c)}" for c in watched)
    on = f"AFTER UPDATE OF {', '.join(quote_ident(c) for c in watched)} ON auth.users"
    return f"""
-- Keeps the columns the spec copies from the auth user in step when the user changes them
-- (provisioning_trigger_sql --sync-on-update). A value the table rejects (another row holds
-- the new email) is a warning in the database log, never an error for the user: find those
-- users under "Values differ from auth" and sync them once the value is free.

{function_and_trigger(quote_ident(*FUNCTION), quote_ident(TRIGGER), body, on=on, when=when)}"""
