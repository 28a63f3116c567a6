"""Schema drift per app table: the live table against the spec (missing columns, unfilled
NOT NULL columns, a unique key, the key's type) and an index on the key column. Read-only;
where a fix needs DDL, the advice carries the statement for a person to apply."""

from __future__ import annotations

from typing import Any

from provisioning.diagnostics.findings import OK, PROBLEM, WARNING, Check, combine, has_key_column
from provisioning.engine import catalog
from provisioning.engine.plans import plan_table
from provisioning.engine.triggergen import quote_ident
from provisioning.spec import TableSpec


def unique_index_statement(spec: TableSpec) -> str:
    """The statement that gives `spec`'s key column the unique index ON CONFLICT needs."""
    index = quote_ident(f"{spec.name}_{spec.key}_key")
    return (
        f"CREATE UNIQUE INDEX CONCURRENTLY {index} ON {quote_ident(spec.schema, spec.name)} ({quote_ident(spec.key)});"
    )


def check_table(spec: TableSpec, auth_id_type: str | None = None) -> Check:
    """One app table against the spec: missing spec columns, NOT NULL columns the spec does
    not fill, a unique index on the key, the key's type against auth.users.id."""
    name = f"Table {spec.qualified_name}"
    plan = plan_table(spec)
    if not plan.exists:
        return Check(
            name,
            PROBLEM,
            f"{spec.qualified_name} does not exist: no {spec.label} can be written.",
            "Create the table (a migration of the app).",
        )
    live = catalog.columns(spec.schema, spec.name)
    details: dict[str, Any] = plan.summary()
    findings = []
    if spec.key not in live:
        return Check(
            name,
            PROBLEM,
            f"{spec.qualified_name} has no key column {spec.key}: rows cannot be tied to auth users.",
            "Fix the table (a migration of the app).",
            details,
        )
    if plan.skipped_columns:
        cols = ", ".join(plan.skipped_columns)
        findings.append(
            (
                WARNING,
                f"The spec writes {cols}, which {spec.qualified_name} lacks: provisioning skips them, "
                "and a trigger that writes them fails.",
                "Nothing to do for provisioning; make sure the sign-up function does not write them "
                "(see the Sign-up function check).",
            )
        )
    if plan.unfilled_required:
        cols = ", ".join(plan.unfilled_required)
        findings.append(
            (
                PROBLEM,
                f"{spec.qualified_name}.{cols} is NOT NULL with no default and the spec does not fill it: "
                f"no {spec.label} can be provisioned.",
                "Give the column a default, or add it to the spec (provisioning/spec/).",
            )
        )
    if not plan.key_is_unique:
        findings.append(
            (
                PROBLEM,
                f"Nothing makes {spec.qualified_name}.{spec.key} unique: `ON CONFLICT ({spec.key})` raises "
                "`there is no unique or exclusion constraint matching the ON CONFLICT specification`, "
                "and a user can get two rows.",
                f"Remove duplicates (Duplicate app rows check), then apply `{unique_index_statement(spec)}`.",
            )
        )
    key_type = live[spec.key].data_type
    details["key_type"] = key_type
    details["auth_users_id_type"] = auth_id_type
    if auth_id_type and key_type != auth_id_type:
        findings.append(
            (
                PROBLEM,
                f"{spec.qualified_name}.{spec.key} is {key_type} but auth.users.id is {auth_id_type}: "
                "comparisons need casts, and lookups by user cannot use an index.",
                f"Change the column's type to {auth_id_type} (a migration of the app).",
            )
        )
    return combine(
        name,
        findings,
        f"{spec.qualified_name} has every column the spec writes; {spec.key} is unique and of type {key_type}.",
        details,
    )


def _usable(index: catalog.Index, spec: TableSpec) -> bool:
    """A valid, non-partial index leading with the key column: one the lookups by user can use."""
    return index.leading_column == spec.key and index.valid and not index.partial


def _key_index_statement(spec: TableSpec, existing: list[catalog.Index]) -> str | None:
    if any(_usable(i, spec) for i in existing):
        return None
    index_name = f"{spec.name}_{spec.key}_idx"
    table = quote_ident(spec.schema, spec.name)
    statement = f"CREATE INDEX CONCURRENTLY {quote_ident(index_name)} ON {table} ({quote_ident(spec.key)});"
    if any(i.name == index_name for i in existing):
        # A failed CREATE INDEX CONCURRENTLY left an invalid index of that name behind.
        statement = f"DROP INDEX CONCURRENTLY {quote_ident(spec.schema, index_name)}; {statement}"
    return statement


def key_index_statement(spec: TableSpec) -> str | None:
    """`CREATE INDEX CONCURRENTLY ...` for the key column of `spec`'s table when no valid,
    non-partial index leads with it; None when one does (or the table or key is missing)."""
    if not has_key_column(spec):
        return None
    return _key_index_statement(spec, catalog.indexes(spec.schema, spec.name))


def check_key_index(spec: TableSpec) -> Check | None:
    """The key column is indexed (every "is this user missing a row" lookup uses it)."""
    if not has_key_column(spec):
        return None  # check_table reports it
    existing = catalog.indexes(spec.schema, spec.name)
    statement = _key_index_statement(spec, existing)
    name = f"Index on {spec.qualified_name}.{spec.key}"
    if statement is None:
        index = next(i for i in existing if _usable(i, spec))
        return Check(name, OK, f"{spec.key} is indexed ({index.name}).", "", {"statements": [index.definition]})
    invalid = [i.name for i in existing if i.leading_column == spec.key and not i.valid]
    found = f"No usable index leads with {spec.qualified_name}.{spec.key}"
    found += f" ({', '.join(invalid)} is invalid, left by a failed build)" if invalid else ""
    return Check(
        name,
        WARNING,
        found + ": every missing-row lookup and provisioning batch scans the whole table.",
        f"Apply `{statement}` (CONCURRENTLY does not block sign-ups; it cannot run inside a transaction block).",
        {"statements": [statement]},
    )
