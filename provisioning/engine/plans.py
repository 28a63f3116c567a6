"""The spec checked against the live catalog: what provisioning will write to each table.

A plan is made fresh for every run, so the dashboard follows the live database, not its
models or this repository: a column the table lacks is skipped and reported; a NOT NULL
column with no default that the spec leaves empty makes the table unprovisionable (and is
reported) instead of failing mid-run.

Foreign keys among the spec's tables set the write order (parents first) and chain the
blocking: a profile that references `public.users(id)` cannot be written for a user whose
`public.users` row is missing and cannot be written. Tables whose foreign keys form a
cycle cannot be ordered: every run is refused (`SpecCycle`), and the doctor says why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from provisioning.engine import catalog
from provisioning.spec import TableSpec, Value


@dataclass(frozen=True)
class Blocker:
    """A per-user reason a row cannot be written: `condition` true means blocked."""

    kind: str  # "null" (a NOT NULL column would get null) or "unique" (value already taken)
    columns: tuple[str, ...]
    reason: str
    index: str = ""


@dataclass(frozen=True, eq=False)
class ParentLink:
    """A foreign key from a plan's table to another spec table. `same_user`: the child row
    of a user references that same user's parent row (each key column gets the value the
    parent's referenced column gets, e.g. both the auth user's id), so the parent's
    blockers are the child's too."""

    parent: TablePlan
    foreign_key: catalog.ForeignKey
    same_user: bool
    #: False when the run writes only some tables and not the parent's (`--table`).
    parent_in_run: bool = True

    @property
    def reason_prefix(self) -> str:
        if not self.parent_in_run:
            return f"needs its {self.parent.spec.qualified_name} row, which this run does not write"
        return f"needs its {self.parent.spec.qualified_name} row, which cannot be written"


class SpecCycle(ValueError):
    """Foreign keys among the spec's tables form a cycle: no write order exists."""


@dataclass(eq=False)  # a plan is itself: compared by identity (parents link plans both ways)
class TablePlan:
    spec: TableSpec
    exists: bool = True
    columns: dict[str, Value] = field(default_factory=dict)
    skipped_columns: list[str] = field(default_factory=list)
    unfilled_required: list[str] = field(default_factory=list)
    key_is_unique: bool = False
    blockers: list[Blocker] = field(default_factory=list)
    foreign_keys: list[catalog.ForeignKey] = field(default_factory=list)
    parents: list[ParentLink] = field(default_factory=list)
    #: The foreign-key cycle this table is part of ("a -> b -> a"), or "".
    cycle: str = ""

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
        if self.cycle:
            return f"foreign keys among the spec's tables form a cycle ({self.cycle})"
        if self.unfilled_required:
            cols = ", ".join(self.unfilled_required)
            verb = "is" if len(self.unfilled_required) == 1 else "are"
            return f"{self.spec.qualified_name}.{cols} {verb} NOT NULL with no default and the spec does not fill it"
        return None

    @property
    def same_user_parents(self) -> list[ParentLink]:
        # A table on a cycle is unwritable for its own reason: no chain to follow (it loops).
        return [] if self.cycle else [link for link in self.parents if link.same_user]

    @property
    def may_block_live_users(self) -> bool:
        """Whether any live user can be refused a row here (the only other reason, being
        soft-deleted, never applies to the population)."""
        return bool(
            self.table_problem or self.blockers or any(p.parent.may_block_live_users for p in self.same_user_parents)
        )

    def summary(self) -> dict:
        return {
            "table": self.spec.qualified_name,
            "writes": sorted(self.columns),
            "skipped_columns": self.skipped_columns,
            "unfilled_required": self.unfilled_required,
            "key_is_unique": self.key_is_unique,
            "problem": self.table_problem,
            "parents": [link.parent.spec.qualified_name for link in self.parents],
        }


def plan_table(spec: TableSpec) -> TablePlan:
    """Check one table's spec against the live catalog."""
    live = catalog.columns(spec.schema, spec.name)
    if not live:
        return TablePlan(spec=spec, exists=False)
    plan = TablePlan(spec=spec, foreign_keys=catalog.foreign_keys(spec.schema, spec.name))
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
    """Every table's plan, parents before children (foreign keys among the spec's tables;
    otherwise in spec order). Tables on a foreign-key cycle get `cycle` set, which makes
    them unwritable and `require_write_order` refuse the run."""
    plans = [plan_table(spec) for spec in specs]
    by_name = {plan.spec.qualified_name: plan for plan in plans}
    for plan in plans:
        for fk in plan.foreign_keys:
            parent = by_name.get(fk.references)
            if parent is None or parent is plan:
                continue
            same_user = all(
                plan.columns.get(column) is not None and plan.columns.get(column) == parent.columns.get(ref)
                for column, ref in zip(fk.columns, fk.ref_columns, strict=True)
            )
            plan.parents.append(ParentLink(parent, fk, same_user))
    return _parents_first(plans)


def plan_run(specs: tuple[TableSpec, ...], table_names: Sequence[str]) -> list[TablePlan]:
    """The plans of a run that writes only `table_names` (parents first): planned with every
    spec table, so a child whose parent this run does not write is blocked for users who
    lack the parent row, instead of failing on the foreign key."""
    wanted = set(table_names)
    plans = [plan for plan in plan_tables(specs) if plan.name in wanted]
    for plan in plans:
        plan.parents = [
            link if link.parent.name in wanted else replace(link, parent_in_run=False) for link in plan.parents
        ]
    return plans


def _parents_first(plans: list[TablePlan]) -> list[TablePlan]:
    ordered: list[TablePlan] = []
    placed: set[int] = set()
    visiting: list[TablePlan] = []

    def place(plan: TablePlan) -> None:
        if id(plan) in placed:
            return
        if any(p is plan for p in visiting):
            start = next(i for i, p in enumerate(visiting) if p is plan)
            loop = [*visiting[start:], plan]
            text = " -> ".join(p.spec.qualified_name for p in loop)
            for member in loop:
                member.cycle = member.cycle or text
            return
        visiting.append(plan)
        for link in plan.parents:
            place(link.parent)
        visiting.pop()
        placed.add(id(plan))
        ordered.append(plan)

    for plan in plans:
        place(plan)
    return ordered


def require_write_order(plans: list[TablePlan]) -> None:
    """Raise SpecCycle when the spec's tables cannot be written in any order."""
    cycles = sorted({plan.cycle for plan in plans if plan.cycle})
    if cycles:
        raise SpecCycle(
            "the spec's tables reference each other in a cycle, so no write order exists: "
            + "; ".join(cycles)
            + ". Drop or defer one of those foreign keys, or leave one table out of the spec."
        )


def spec_problems() -> list[str]:
    """Why the spec in force cannot be used, one line each (empty when it can): a mistake in
    the file, or (for a team's own file) a table or column the database lacks."""
    from provisioning import spec

    if spec.SPEC_ERROR:
        return [spec.SPEC_ERROR]
    return [] if spec.IS_DEFAULT_SPEC else spec_file_problems(spec.SPEC, spec.SPEC_FILE)


def spec_file_problems(specs: tuple[TableSpec, ...], path: str | Path) -> list[str]:
    """What the file names that the live database lacks: a table, or a column of one (a
    team's own file names its own columns; only the built-in default tolerates the two
    Eloity shapes by skipping). One message per mistake; empty when all is there."""
    problems = []
    for spec in specs:
        live = catalog.columns(spec.schema, spec.name)
        if not live:
            problems.append(f"{path}: table {spec.name!r}: {spec.qualified_name} does not exist in the database")
            continue
        missing = [c for c in spec.values if c not in live]
        if missing:
            problems.append(f"{path}: table {spec.name!r}: {spec.qualified_name} has no column {', '.join(missing)}")
    return problems
