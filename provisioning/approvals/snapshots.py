"""What a request acts on, as JSON, taken when it is asked and again when it is approved:
when the two differ, the data changed since the request (registry.Kind.on_change).
Reads only; SQL composed with psycopg.sql around the drift and engine statements."""

from __future__ import annotations

from django.db import connection
from psycopg import sql

from provisioning.account_actions import selectors as account_selectors
from provisioning.account_actions import statements as account_statements
from provisioning.drift import selectors as drift_selectors
from provisioning.drift import statements as drift_statements
from provisioning.drift.columns import withheld_columns
from provisioning.engine import selectors


def orphans(tables: list[str] | None = None) -> dict:
    """Per table with orphaned rows: how many, and a digest of them all (their JSON, secrets
    left out, in order), so a row that went or came, or changed, is a difference."""
    found = {}
    with connection.cursor() as cursor:
        for spec in drift_selectors.removal_order():
            if tables and spec.name not in tables:
                continue
            rows = drift_statements.orphans(spec, withheld=withheld_columns(spec))
            cursor.execute(
                sql.SQL(
                    "SELECT count(*), md5(coalesce(string_agg(r::text, ',' ORDER BY r::text), '')) "
                    "FROM ({rows}) AS s(r)"
                ).format(rows=rows),
                {},
            )
            count, digest = cursor.fetchone()
            if count:
                found[spec.qualified_name] = {"count": count, "digest": digest}
    return {"tables": found}


def users_missing(tables: list[str] | None = None) -> dict:
    """Live users missing a row in any of `tables` (all when None): one count."""
    return {"users": selectors.count_missing_any(tables)}


def users_drifted() -> dict:
    """Live users with a copied value that differs from their auth user's: one count."""
    return {"users": selectors.population().filter(drift_selectors.drifted_q()).count()}


def account(user_id, *, app_rows: bool = False) -> dict:
    """One auth user as an account action would find it: when it was last changed, its ban,
    its soft delete, its MFA factors (id and status, never a secret) and, for a delete, how
    many app rows it has per spec table. {"exists": False} when the user is gone."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT updated_at, banned_until, deleted_at FROM auth.users WHERE id = %s",
            [user_id],
        )
        row = cursor.fetchone()
        if row is None:
            return {"exists": False}
        found = {
            "exists": True,
            **{
                k: v.isoformat() if v else None
                for k, v in zip(("updated_at", "banned_until", "deleted_at"), row, strict=True)
            },
            "factors": [f"{f['id']}:{f['status']}" for f in account_selectors.user_factors(user_id)],
        }
        if app_rows:
            counts = {}
            for spec in drift_selectors.removal_order():
                cursor.execute(account_statements.count_user_rows(spec), {"user": user_id})
                counts[spec.qualified_name] = cursor.fetchone()[0]
            found["app_rows"] = counts
    return found
