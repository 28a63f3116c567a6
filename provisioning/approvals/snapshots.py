"""What a request acts on, as JSON, taken when it is asked and again when it is approved:
when the two differ, the data changed since the request (registry.Kind.on_change).
Reads only; SQL composed with psycopg.sql around the drift and engine statements."""

from __future__ import annotations

from django.db import connection
from psycopg import sql

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
