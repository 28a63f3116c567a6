"""What the app tables' own rules do to provisioning: foreign keys between them (the write
order, and users blocked because their parent row cannot be written), CHECK constraints
that the spec's values would break, and triggers that can reject a row. Read-only."""

from __future__ import annotations

from collections.abc import Callable

from django.db import connection
from psycopg import sql

from provisioning.diagnostics.findings import OK, PROBLEM, SAMPLE, WARNING, Check, counted_reasons
from provisioning.engine import catalog, selectors, statements
from provisioning.engine.plans import TablePlan, plan_tables
from provisioning.spec import SPEC

CHAIN_MARK = "needs its "


def check_write_order(blocked: Callable[[], selectors.Blocked] | None = None) -> Check:
    """Foreign keys among the spec's tables: the order rows are written in, a cycle that
    refuses every run, and how many users a chain blocks."""
    plans = plan_tables(SPEC)
    links = [
        f"{plan.spec.qualified_name}.{', '.join(link.foreign_key.columns)} -> {link.parent.spec.qualified_name}"
        for plan in plans
        for link in plan.parents
    ]
    details = {"order": [plan.spec.qualified_name for plan in plans], "foreign_keys": links}
    cycles = sorted({plan.cycle for plan in plans if plan.cycle})
    if cycles:
        return Check(
            "Foreign keys between app tables",
            PROBLEM,
            f"The spec's tables reference each other in a cycle ({'; '.join(cycles)}): no order can write them, "
            "so every provisioning run is refused.",
            "Drop or defer one of the foreign keys on the cycle, or leave one of its tables out of the spec.",
            details,
        )
    counts = (blocked() if blocked else selectors.current_blocked_summary(sample=SAMPLE, plans=plans)).rows
    chained = {reason: n for reason, n in counts.items() if CHAIN_MARK in reason}
    order = ", then ".join(p.spec.qualified_name for p in plans)
    if not chained:
        found = f"Rows are written parents first: {order}." if links else "No foreign keys between the app tables."
        return Check("Foreign keys between app tables", OK, found, "", details)
    total = sum(chained.values())
    return Check(
        "Foreign keys between app tables",
        WARNING,
        f"{total} missing row(s) cannot be provisioned because their parent row cannot be written: "
        + counted_reasons(chained)
        + ".",
        "Fix the parent's blocker first (a NOT NULL column the spec leaves empty: give it a value in the spec or "
        "a default); the children follow in the same run.",
        {**details, "rows": [{"reason": r, "rows": n} for r, n in chained.items()]},
    )


def check_check_constraints() -> Check:
    """CHECK constraints on the spec's tables against the values provisioning would write:
    how many live users lacking the row would have it rejected, per constraint."""
    findings = []
    rows = []
    for plan in plan_tables(SPEC):
        if not plan.keyed or plan.table_problem:
            continue
        live = catalog.columns(plan.spec.schema, plan.spec.name)
        for constraint in catalog.check_constraints(plan.spec.schema, plan.spec.name):
            rejected, sample = _rejected_by(plan, constraint, live)
            rows.append({"constraint": f"{plan.spec.qualified_name}.{constraint.name}", "rejects": rejected})
            if rejected:
                findings.append(
                    f"{plan.spec.qualified_name} CHECK {constraint.name} ({constraint.expression}) rejects the row "
                    f"provisioning would write for {rejected} live user(s) lacking one (e.g. {', '.join(sample)})."
                )
    if not findings:
        found = "The spec's values pass every CHECK constraint of the app tables." if rows else "No CHECK constraints."
        return Check("CHECK constraints", OK, found, "", {"rows": rows})
    return Check(
        "CHECK constraints",
        WARNING,
        " ".join(findings),
        "Provisioning writes every other row and reports these users with the database's message. Change the "
        "spec's value, or the constraint, if the rejected rows should exist.",
        {"rows": rows},
    )


def _rejected_by(plan: TablePlan, constraint, live) -> tuple[int, list[str]]:
    """(how many, a few ids) of the live users lacking the plan's row whose row would
    break `constraint`: the expression evaluated over the spec's values for each user."""
    values = sql.SQL(", ").join(
        sql.SQL("CAST({} AS {}) AS {}").format(
            plan.columns[c].expression() if c in plan.columns else sql.SQL("NULL"),
            sql.SQL(live[c].data_type),
            sql.Identifier(c),
        )
        for c in constraint.columns
    )
    statement = sql.SQL(
        "SELECT count(*), (array_agg(u.id::text ORDER BY u.id))[1:%(limit)s] FROM {auth} u "
        "WHERE {population} AND {missing} AND NOT coalesce((SELECT ({check}) FROM (SELECT {values}) t), true)"
    ).format(
        auth=statements.AUTH_USERS,
        population=statements.POPULATION,
        missing=statements.missing(plan),
        check=sql.SQL(constraint.expression),
        values=values,
    )
    with connection.cursor() as cursor:
        cursor.execute(statement, {"limit": SAMPLE})
        rejected, sample = cursor.fetchone()
    return rejected, list(sample or [])


def check_app_table_triggers() -> Check:
    """Triggers on the spec's tables that run before an insert: they can change or reject
    the rows provisioning writes."""
    before_insert, others = [], []
    for spec in SPEC:
        for trigger in catalog.triggers(spec.schema, spec.name):
            where = f"{spec.qualified_name}: {trigger.name} ({trigger.function_schema}.{trigger.function_name})"
            (before_insert if trigger.before and trigger.on_insert else others).append(where)
    details = {"before_insert": before_insert, "other": others}
    if not before_insert:
        found = "No trigger runs before an insert into the app tables."
        if others:
            found += f" Other triggers: {'; '.join(others)}."
        return Check("Triggers on app tables", OK, found, "", details)
    return Check(
        "Triggers on app tables",
        WARNING,
        f"Triggers run before each insert and can change or reject the rows provisioning writes: "
        f"{'; '.join(before_insert)}.",
        "A row such a trigger rejects is reported for its user with the database's message; the rest of the batch "
        "is written. The simulated sign-up and a dry run show what it does to the spec's rows.",
        details,
    )
