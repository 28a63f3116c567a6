"""What to do about each reason a missing row cannot be provisioned.

The reasons come from the plans (`engine/plans.py`, `engine/statements.block_reason`): a
table no row can be written to, a NOT NULL column the auth user leaves empty, a unique
value another row holds, a parent row that cannot be written. The advice is worked out
from the same plan objects, so it follows the reason: a phone-only sign-up gets the
phone-only advice, a column no one fills gets its default, never the other way round.
"""

from __future__ import annotations

from provisioning.engine import remedies
from provisioning.engine.plans import TablePlan
from provisioning.engine.statements import SOFT_DELETED_REASON
from provisioning.engine.triggergen import quote_ident
from provisioning.spec import AuthColumn

AGAIN = "then provision again"


def advice_by_reason(counts: dict[str, int], plans: list[TablePlan]) -> dict[str, str]:
    """{`table: reason` (as `selectors.cannot_provision` counts them): what to do}, the most
    frequent reason first."""
    by_name = {plan.name: plan for plan in plans}
    advice = {}
    for key in sorted(counts, key=lambda k: -counts[k]):
        table, _, reason = key.partition(": ")
        plan = by_name.get(table)
        advice[key] = advice_for(plan, reason) if plan is not None else _unknown()
    return advice


def advice_for(plan: TablePlan, reason: str) -> str:
    """What to do about `reason`, one of the plan's reasons a user's row cannot be written."""
    if reason == SOFT_DELETED_REASON:
        return "Expected: a deleted user gets no rows."
    if reason == plan.table_problem:
        return _table_problem(plan)
    for link in plan.parents:
        if reason.startswith(link.reason_prefix):
            parent = link.parent.spec.qualified_name
            if not link.parent_in_run:
                return f"Provision the {parent} rows too (a run of every table writes parents first)."
            inner = reason[len(link.reason_prefix) :].strip().removeprefix("(").removesuffix(")")
            return f"Fix the {parent} row first: {advice_for(link.parent, inner)}"
    for blocker in plan.blockers:
        if reason == blocker.reason:
            return _null(plan, blocker.columns[0]) if blocker.kind == "null" else _taken(plan, blocker.columns)
        if blocker.kind == "unique" and reason.startswith(f"{', '.join(blocker.columns)} shared with an earlier"):
            return (
                "Two users of the run would write the same value; the first by id gets the row. Decide whose "
                f"value it is, change the other's, {AGAIN}."
            )
    return _unknown()


def _table_problem(plan: TablePlan) -> str:
    table = plan.spec.qualified_name
    if not plan.exists:
        return f"Not expected: create {table}, or correct the spec (docs/spec-file.md), {AGAIN}."
    if plan.spec.key not in plan.columns:
        return f"Not expected: give {table} its key column {plan.spec.key}, or correct the spec's key, {AGAIN}."
    if plan.cycle:
        return "Drop or defer one foreign key on the cycle (see “Foreign keys between app tables”)."
    statements = " ".join(
        f"`ALTER TABLE {quote_ident(plan.spec.schema, plan.spec.name)} ALTER COLUMN {quote_ident(c)} SET DEFAULT ...;`"
        for c in plan.unfilled_required
    )
    return (
        f"Not expected: no user gets a row in {table} until {', '.join(plan.unfilled_required)} gets a value. "
        f"Give it a default ({statements}, to review as a migration) or a value in the spec "
        f"(docs/spec-file.md), {AGAIN}."
    )


def _null(plan: TablePlan, column: str) -> str:
    value = plan.columns[column]
    relax = f"`{remedies.drop_not_null(plan, column)}` (to review: only if the app allows it)"
    if isinstance(value, AuthColumn) and value.column == "email":
        return (
            "Expected for phone-only (and anonymous) sign-ups: they have no email. Ask the person for "
            f"{remedies.asked_for(value)} and {AGAIN}, or relax the column: {relax}."
        )
    return (
        f"Expected for sign-ups without {value.describe()}: give the spec a fallback value "
        f"(docs/spec-file.md), or relax the column: {relax}; {AGAIN}."
    )


def _taken(plan: TablePlan, columns: tuple[str, ...]) -> str:
    return (
        f"Another {plan.spec.qualified_name} row already holds the value ({', '.join(columns)}): often an orphaned "
        f"row of a deleted user (see “Orphaned app rows”). Free the value, {AGAIN}."
    )


def _unknown() -> str:
    return f"Fix the data or the schema the reason names, {AGAIN}."
