"""The spec checked against the live catalog: what provisioning will write to each table.

A plan is made fresh for every run, so the dashboard follows the live database, not its
models or this repository: a column the table lacks is skipped and reported; a NOT NULL
column with no default that the spec leaves empty makes the table unprovisionable (and is
reported) instead of failing mid-run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from provisioning.engine import catalog
from provisioning.spec import TableSpec, Value


@dataclass(frozen=True)
class Blocker:
    """A per-user reason a row cannot be written: `condition` true means blocked."""

    kind: str  # "null" (a NOT NULL column would get null) or "unique" (value already taken)
    columns: tuple[str, ...]
    reason: str
    index: str = ""


@dataclass
class TablePlan:
    spec: TableSpec
    exists: bool = True
    columns: dict[str, Value] = field(default_factory=dict)
    skipped_columns: list[str] = field(default_factory=list)
    unfilled_required: list[str] = field(default_factory=list)
    key_is_unique: bool = False
    blockers: list[Blocker] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def keyed(self) -> bool:
        """The table exists and has its key column: rows can be looked up by auth user."""
        return self.exists and self.spec.key in self.columns

    @property
    def table_problem(self) -> str | None:
        """Why no row at all can be written to this table, or None."""
        if not self.exists:
            return f"table {self.spec.qualified_name} does not exist"
        if self.spec.key not in self.columns:
            return f"{self.spec.qualified_name} has no key column {self.spec.key}"
        if self.unfilled_required:
            cols = ", ".join(self.unfilled_required)
            return f"{self.spec.qualified_name}.{cols} NOT NULL with no default, and the spec does not fill it"
        return None

    @property
    def may_block_live_users(self) -> bool:
        """Whether any live user can be refused a row here (the only other reason, being
        soft-deleted, never applies to the population)."""
        return bool(self.table_problem or self.blockers)

    def summary(self) -> dict:
        return {
            "table": self.spec.qualified_name,
            "writes": sorted(self.columns),
            "skipped_columns": self.skipped_columns,
            "unfilled_required": self.unfilled_required,
            "key_is_unique": self.key_is_unique,
            "problem": self.table_problem,
        }


def plan_table(spec: TableSpec) -> TablePlan:
    """Check one table's spec against the live catalog."""
    live = catalog.columns(spec.schema, spec.name)
    if not live:
        return TablePlan(spec=spec, exists=False)
    plan = TablePlan(spec=spec)
    for column, value in spec.values.items():
        if column in live and not live[column].generated:
            plan.columns[column] = value
        else:
            plan.skipped_columns.append(column)
    plan.unfilled_required = [c.name for c in live.values() if c.required and c.name not in plan.columns]

    for column, value in plan.columns.items():
        if value.from_auth_user and column != spec.key and live[column].not_null:
            plan.blockers.append(
                Blocker(
                    kind="null",
                    columns=(column,),
                    reason=f"auth user has no {value.describe().split('.')[-1]}; "
                    f"{spec.qualified_name}.{column} is NOT NULL",
                )
            )
    for key in catalog.unique_keys(spec.schema, spec.name):
        if key.columns == (spec.key,):
            plan.key_is_unique = True
            continue
        if spec.key in key.columns:
            continue
        # A unique key written wholly from the auth user can collide with another row.
        values = [plan.columns.get(c) for c in key.columns]
        if all(v is not None for v in values) and any(v.from_auth_user for v in values):
            cols = ", ".join(key.columns)
            plan.blockers.append(
                Blocker(
                    kind="unique",
                    columns=key.columns,
                    reason=f"{cols} already used by another {spec.qualified_name} row ({key.name})",
                    index=key.name,
                )
            )
    return plan


def plan_tables(specs: tuple[TableSpec, ...]) -> list[TablePlan]:
    return [plan_table(spec) for spec in specs]
