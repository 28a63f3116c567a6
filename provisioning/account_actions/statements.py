"""The SQL of the account actions, composed with psycopg.sql: a deleted user's app rows
(taken out, put back), the rows of other tables that point at them, and the one documented
write to `auth` (signing a user out everywhere)."""

from __future__ import annotations

from psycopg import sql

from provisioning.spec.vocabulary import TableSpec

#: Supabase has no admin "sign out user" endpoint; its docs delete the user's sessions (their
#: refresh tokens go with them, ON DELETE CASCADE). The only statement that writes to `auth`.
SIGN_OUT_EVERYWHERE = "DELETE FROM auth.sessions WHERE user_id = %s"


def take_user_rows(spec: TableSpec) -> sql.Composed:
    """Delete the user's rows of the spec's table (parameter `user`), returning each row in
    full as JSON (kept in memory to put it back; the event keeps it without its secrets)."""
    return sql.SQL("DELETE FROM {t} x WHERE x.{k} = %(user)s RETURNING to_jsonb(x)::text").format(
        t=spec.identifier(), k=sql.Identifier(spec.key)
    )


def put_row_back(spec: TableSpec) -> sql.Composed:
    """Insert one row (parameter `row`, the JSON `take_user_rows` returned) as it was."""
    return sql.SQL(
        "INSERT INTO {t} OVERRIDING SYSTEM VALUE SELECT (jsonb_populate_record(NULL::{t}, %(row)s::jsonb)).*"
    ).format(t=spec.identifier())


def rows_pointing_at_user_rows(spec: TableSpec, schema: str, table: str, fk) -> sql.Composed:
    """How many rows of `schema.table` reference, through `fk`, the user's row of the spec's
    table (parameter `user`): deleting the user's row would take or change them unrecorded."""
    return sql.SQL(
        "SELECT count(*) FROM {r} r WHERE ({cols}) IN (SELECT {refs} FROM {t} x WHERE x.{k} = %(user)s)"
    ).format(
        r=sql.Identifier(schema, table),
        cols=sql.SQL(", ").join(sql.SQL("r.{}").format(sql.Identifier(c)) for c in fk.columns),
        refs=sql.SQL(", ").join(sql.SQL("x.{}").format(sql.Identifier(c)) for c in fk.ref_columns),
        t=spec.identifier(),
        k=sql.Identifier(spec.key),
    )


def rows_pointing_at_auth_user(schema: str, table: str, fk) -> sql.Composed:
    """How many rows of `schema.table` reference the auth user (parameter `user`) through a
    one-column `fk` to auth.users."""
    return sql.SQL("SELECT count(*) FROM {r} WHERE {c} = %(user)s").format(
        r=sql.Identifier(schema, table), c=sql.Identifier(fk.columns[0])
    )


def count_user_rows(spec: TableSpec) -> sql.Composed:
    """How many rows of the spec's table belong to the user (parameter `user`)."""
    return sql.SQL("SELECT count(*) FROM {t} x WHERE x.{k} = %(user)s").format(
        t=spec.identifier(), k=sql.Identifier(spec.key)
    )
