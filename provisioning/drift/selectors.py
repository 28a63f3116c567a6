"""Reads: the value drift report and orphaned rows. Never writes."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

from django.db import connection
from django.db.models import BooleanField, Q
from django.db.models.expressions import RawSQL

from provisioning.drift import statements
from provisioning.drift.columns import CopiedColumn, by_table, copied_columns, withheld_columns
from provisioning.engine import catalog, plans
from provisioning.engine.statements import as_text
from provisioning.models import DriftedUser
from provisioning.spec import SPEC, TableSpec, table_spec


@dataclass(frozen=True)
class DriftCount:
    table: str  # public.users
    column: str  # email
    copied_from: str  # auth.users.email
    rows: int


def drift_counts() -> tuple[list[DriftCount], dict[str, int]]:
    """Per copied column, live users' rows whose value differs from the auth user's
    (only columns with a difference), and per table the rows where any column does. One
    pass over each table."""
    per_column, per_table = [], {}
    with connection.cursor() as cursor:
        for name, columns in by_table(copied_columns()).items():
            spec = table_spec(name)
            cursor.execute(statements.drift_counts(spec, columns), {})
            *each, any_column = cursor.fetchone()
            per_table[spec.qualified_name] = any_column
            per_column += [
                DriftCount(spec.qualified_name, c.column, c.value.describe(), n)
                for c, n in zip(columns, each, strict=True)
                if n
            ]
    return per_column, per_table


def drifted_q(
    after: uuid.UUID | None = None, *, scanned: bool = False, grouped: dict[str, list[CopiedColumn]] | None = None
) -> Q:
    """Auth users with an app row whose copied value differs from theirs. `after`: only ids
    above it (a keyset page). `scanned` (the list's "Values differ from auth" filter): only
    the users the last drift scan found (`services.scan_drift`), each checked again live,
    so a user in step since is never listed. `grouped`: the copied columns per table, when
    the caller has them already."""
    grouped = by_table(copied_columns()) if grouped is None else grouped
    if not grouped:
        return Q(pk__in=[])
    if scan_pays(grouped):
        # A probe by key per user: a page stops after its rows. Walking every user in id
        # order, a million users with 0.2% of them drifted took 1.5 s a page (250,000
        # users walked to count 500); walking the scan's users, milliseconds.
        probes = " OR ".join(as_text(statements.drifted_row(table_spec(t), cols)) for t, cols in grouped.items())
        probe = Q(RawSQL(f"({probes})", (), output_field=BooleanField()))  # noqa: S611 - psycopg.sql
        if scanned:
            found = DriftedUser.objects.values("user_id")
            return Q(pk__in=found.filter(user_id__gt=after) if after else found) & probe
        return probe
    parts = [
        as_text(statements.drifted_keys(table_spec(t), cols, after=after and str(after))) for t, cols in grouped.items()
    ]
    return Q(pk__in=RawSQL(" UNION ".join(parts), ()))  # noqa: S611 - composed with psycopg.sql


def scan_pays(grouped: dict[str, list[CopiedColumn]]) -> bool:
    """Whether the list's drift filter reads the last drift scan: where every table of the
    copied columns (`grouped`, `by_table`) has an index on its key (the scan's users are
    then checked by probes). Without one, the filter's single join costs what the scan
    itself would."""
    return bool(grouped) and catalog.key_indexed(
        [(table_spec(t).schema, table_spec(t).name, table_spec(t).key) for t in grouped]
    )


def user_drift(user_id: uuid.UUID) -> list[dict]:
    """The user's copied values side by side: per table and column, the app's value and
    the auth user's, and whether they differ (for the detail page)."""
    rows = []
    with connection.cursor() as cursor:
        for name, columns in by_table(copied_columns()).items():
            spec = table_spec(name)
            cursor.execute(statements.user_values(spec, columns), {"id": user_id})
            for found in cursor.fetchall():
                for i, column in enumerate(columns):
                    app, auth, differs = found[3 * i : 3 * i + 3]
                    rows.append(
                        {
                            "table": spec.qualified_name,
                            "column": column.column,
                            "copied_from": column.value.describe(),
                            "app": app,
                            "auth": auth,
                            "differs": differs,
                        }
                    )
    return rows


def differences(user_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[dict]]:
    """{user id: the copied values that differ, each {"column": "public.users.email", "app":
    ..., "auth": ...}} for a list page's users: one query per table, whatever the page's
    size. Users in step are left out."""
    found: dict[uuid.UUID, list[dict]] = {}
    if not user_ids:
        return found
    with connection.cursor() as cursor:
        for name, columns in by_table(copied_columns()).items():
            spec = table_spec(name)
            cursor.execute(statements.users_values(spec, columns), {"ids": list(user_ids)})
            for key, *values in cursor.fetchall():
                for i, column in enumerate(columns):
                    app, auth, differs = values[3 * i : 3 * i + 3]
                    if differs:
                        found.setdefault(key, []).append(
                            {"column": f"{spec.qualified_name}.{column.column}", "app": app, "auth": auth}
                        )
    return found


def removal_order() -> list[TableSpec]:
    """The spec's tables children first (the reverse of the write order), so that a child
    row is removed, and recorded, before a cascade from its parent could take it."""
    return [
        plan.spec
        for plan in reversed(plans.plan_tables(SPEC))
        if catalog.columns(plan.spec.schema, plan.spec.name).get(plan.spec.key)
    ]


def orphaned_rows(sample: int = 20) -> dict[str, dict]:
    """Per table (children first): how many rows belong to no auth user, and the first
    `sample` of them in full but for the columns that hold secrets (`withheld`)."""
    found = {}
    with connection.cursor() as cursor:
        for spec in removal_order():
            cursor.execute(statements.orphans(spec, action="count"), {})
            (count,) = cursor.fetchone()
            if not count:
                continue
            withheld = withheld_columns(spec)
            cursor.execute(statements.orphans(spec, sample=sample, withheld=withheld), {})
            found[spec.qualified_name] = {
                "count": count,
                "key": spec.key,
                "withheld": withheld,
                "sample": [json.loads(row[0]) for row in cursor.fetchall()],
            }
    return found
