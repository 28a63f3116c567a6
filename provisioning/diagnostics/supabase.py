"""What Supabase users hit beyond the sign-up trigger itself, each with the error they see,
the cause and the fix as SQL to review (never run by the dashboard). Read-only."""

from __future__ import annotations

import re

from django.db import connection
from psycopg import sql

from provisioning.diagnostics.findings import AUTH_SCHEMA, AUTH_TABLE, OK, PROBLEM, WARNING, Check
from provisioning.engine import catalog

#: Delete rules that let Supabase delete an auth user: cascade, set null, set default.
DELETES_FOLLOW = {"c", "n", "d"}
RULES = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}
#: Columns Supabase Auth reads as strings: NULL there breaks it.
STRING_COLUMNS = (
    "confirmation_token",
    "recovery_token",
    "email_change_token_new",
    "email_change_token_current",
    "phone_change_token",
    "reauthentication_token",
    "email_change",
    "phone_change",
)


def check_deleting_users() -> Check:
    """Foreign keys to auth.users that make "delete user" in Supabase fail."""
    name = "Deleting users"
    blocking = [
        (schema, table, fk)
        for schema, table, fk in catalog.foreign_keys_to(AUTH_SCHEMA, AUTH_TABLE)
        if fk.on_delete not in DELETES_FOLLOW
    ]
    if not blocking:
        return Check(name, OK, "No foreign key stops Supabase from deleting an auth user.", "", {})
    statements = [
        sql.SQL(
            "ALTER TABLE {table} DROP CONSTRAINT {name}, ADD CONSTRAINT {name} "
            "FOREIGN KEY ({columns}) REFERENCES auth.users ({refs}) ON DELETE CASCADE;"
        )
        .format(
            table=sql.Identifier(schema, table),
            name=sql.Identifier(fk.name),
            columns=sql.SQL(", ").join(map(sql.Identifier, fk.columns)),
            refs=sql.SQL(", ").join(map(sql.Identifier, fk.ref_columns)),
        )
        .as_string(connection.connection)
        for schema, table, fk in blocking
    ]
    listed = "; ".join(
        f"{schema}.{table}.{', '.join(fk.columns)} ({fk.name}, ON DELETE {RULES.get(fk.on_delete, fk.on_delete)})"
        for schema, table, fk in blocking
    )
    return Check(
        name,
        PROBLEM,
        f"Foreign keys to auth.users without ON DELETE CASCADE or SET NULL: {listed}. Deleting such a user in "
        'Supabase fails with `23503 ... violates foreign key constraint` (the dashboard says "Database error '
        'deleting user").',
        "Let the app rows follow the user (CASCADE), or keep them without it (SET NULL on a nullable column). "
        "Review, then apply as a migration:",
        {"statements": statements},
    )


def check_null_strings_in_auth_users() -> Check:
    """Rows written into auth.users by hand with NULL where Supabase Auth expects ''."""
    name = "Rows written into auth.users by hand"
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT bool_and(has_column_privilege('auth.users', c, 'SELECT')) FROM unnest(%s::text[]) c",
            [list(STRING_COLUMNS)],
        )
        (readable,) = cursor.fetchone()
        if not readable:
            return Check(
                name,
                OK,
                "Not checked: the dashboard's role may not read auth.users' token columns (as the README's grants "
                "intend). Run the doctor as a role that can, to check.",
                "",
                {},
            )
        any_null = sql.SQL(" OR ").join(sql.SQL("{} IS NULL").format(sql.Identifier(c)) for c in STRING_COLUMNS)
        cursor.execute(sql.SQL("SELECT count(*) FROM auth.users WHERE {}").format(any_null))
        (rows,) = cursor.fetchone()
    if not rows:
        return Check(name, OK, "No auth user has NULL where Supabase Auth expects a string.", "", {})
    fix = sql.SQL("UPDATE auth.users SET {} WHERE {};").format(
        sql.SQL(", ").join(sql.SQL("{0} = coalesce({0}, '')").format(sql.Identifier(c)) for c in STRING_COLUMNS),
        any_null,
    )
    return Check(
        name,
        PROBLEM,
        f"{rows} auth user(s) have NULL in a token or change column (rows written into auth.users by hand or by "
        "a script): signing them in fails with `Database error querying schema ... converting NULL to string is "
        "unsupported`.",
        "Set those columns to '' (the dashboard never writes to auth; review, then run as the postgres role):",
        {"statements": [fix.as_string(connection.connection)], "rows": [{"auth users": rows}]},
    )


#: A PL/pgSQL exception block that swallows errors.
_CATCH_ALL = re.compile(r"\bEXCEPTION\s+WHEN\b", re.IGNORECASE)


def check_hidden_failures(function: catalog.Function | None, qualified: str) -> Check:
    """A sign-up function that catches exceptions: failures leave users without rows."""
    name = "Errors hidden by the sign-up function"
    if function is None or not _CATCH_ALL.search(function.definition):
        return Check(name, OK, f"{qualified} does not catch exceptions: a failure is seen, not hidden.", "", {})
    return Check(
        name,
        WARNING,
        f"{qualified} catches exceptions (`EXCEPTION WHEN ...`): when an insert fails, the sign-up still succeeds "
        "and the user is left without rows, with no error anywhere.",
        "Let errors surface (remove the handler), or log them; the check “Sign-ups missing rows” shows the "
        "evidence, week by week.",
        {"definition": function.definition},
    )
