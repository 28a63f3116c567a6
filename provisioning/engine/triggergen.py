"""The sign-up trigger, generated from the spec and the live catalog, for people to review.

`trigger_sql()` returns `CREATE OR REPLACE FUNCTION public.handle_new_user()` plus the
`on_auth_user_created` trigger on auth.users. It writes only columns the live tables have;
uses `ON CONFLICT (<key>) DO NOTHING` only where the key has a unique index (elsewhere a
`WHERE NOT EXISTS` guard, since ON CONFLICT without one raises); skips a table's insert when
a NOT NULL column would get null from the sign-up (public.users without an email). The
dashboard never executes it: a team applies it as a migration.
"""

from __future__ import annotations

from datetime import UTC, datetime

from django.db import connection

from provisioning.engine.plans import TablePlan, plan_tables
from provisioning.spec import SPEC, AuthColumn

FUNCTION = ("public", "handle_new_user")
TRIGGER = "on_auth_user_created"
_QUOTE = "$function$"
_WIDTH = 96


class _Names:
    """Identifiers as PostgreSQL's quote_ident() writes them: bare unless they need quotes,
    so the SQL reads like hand-written SQL and is still exact."""

    def __init__(self, names: set[str]):
        with connection.cursor() as cursor:
            cursor.execute("SELECT n, quote_ident(n) FROM unnest(%s::text[]) AS n", [sorted(names)])
            self._quoted = dict(cursor.fetchall())

    def __call__(self, *parts: str) -> str:
        return ".".join(self._quoted[p] for p in parts)


def quote_ident(*parts: str) -> str:
    """One dotted name as PostgreSQL's quote_ident() writes it (`public.profiles`)."""
    return _Names(set(parts))(*parts)


def _wrap(items: list[str], indent: str) -> str:
    """Comma-separated items, as many per line as fit (never breaking inside an item)."""
    lines, line = [], ""
    for item in items:
        piece = f"{line}, {item}" if line else item
        if line and len(indent) + len(piece) > _WIDTH:
            lines.append(line + ",")
            line = item
        else:
            line = piece
    lines.append(line)
    return "\n".join(indent + text for text in lines)


def _insert(plan: TablePlan, indent: str, names: _Names) -> str:
    table = names(plan.spec.schema, plan.spec.name)
    key = names(plan.spec.key)
    columns = _wrap([names(c) for c in plan.columns], indent + "    ")
    values = _wrap([v.trigger_expression(names) for v in plan.columns.values()], indent + "    ")
    key_value = plan.columns[plan.spec.key].trigger_expression(names)
    if plan.key_is_unique:
        return (
            f"{indent}INSERT INTO {table} (\n{columns}\n{indent}) VALUES (\n{values}\n{indent})"
            f" ON CONFLICT ({key}) DO NOTHING;"
        )
    return (
        f"{indent}-- No unique index on {plan.spec.qualified_name}.{plan.spec.key}: ON CONFLICT ({key}) would raise,\n"
        f"{indent}-- so the insert is guarded instead.\n"
        f"{indent}INSERT INTO {table} (\n{columns}\n{indent})\n{indent}SELECT\n{values}\n"
        f"{indent}WHERE NOT EXISTS (SELECT 1 FROM {table} x WHERE x.{key} = {key_value});"
    )


def _parent_guard(link, plan: TablePlan, names: _Names) -> str:
    """`EXISTS (the user's parent row)`: a child row is written only after its parent's, so
    a sign-up whose parent row was left out (a guard above) gets no child row instead of a
    foreign-key error that would fail the whole sign-up."""
    fk = link.foreign_key
    matches = " AND ".join(
        f"p.{names(ref)} = {plan.columns[column].trigger_expression(names)}"
        for column, ref in zip(fk.columns, fk.ref_columns, strict=True)
    )
    return f"EXISTS (SELECT 1 FROM {names(fk.ref_schema, fk.ref_table)} p WHERE {matches})"


def _table_block(plan: TablePlan, names: _Names, skipped: dict[str, str]) -> str:
    """The function's lines for one table; `skipped` (table -> why) is updated with this
    table when no row of it can be written, so that its children are skipped too."""
    indent = "    "
    name = plan.spec.qualified_name
    if plan.table_problem:
        skipped[name] = plan.table_problem
        return f"{indent}-- {name} skipped: {plan.table_problem}."
    for link in plan.same_user_parents:
        parent = link.parent.spec.qualified_name
        if parent in skipped:
            skipped[name] = f"needs its {parent} row, which this function cannot write"
            return f"{indent}-- {name} skipped: it needs its {parent} row, which this function cannot write."
    lines = []
    if plan.skipped_columns:
        lines.append(f"{indent}-- {name} lacks {', '.join(plan.skipped_columns)} (in the spec): not written.")
    guards = []
    for blocker in plan.blockers:
        if blocker.kind != "null":
            continue
        (column,) = blocker.columns
        guards.append((column, f"{plan.columns[column].trigger_expression(names)} IS NOT NULL"))
    if guards:
        why = ", ".join(c for c, _ in guards)
        lines.append(f"{indent}-- {name}.{why} is NOT NULL: a sign-up without it gets no row here instead of failing.")
    parents = [(link.parent.spec.qualified_name, _parent_guard(link, plan, names)) for link in plan.same_user_parents]
    if parents:
        lines.append(
            f"{indent}-- {name} references {', '.join(p for p, _ in parents)}: written only where that row exists."
        )
    conditions = [g for _, g in guards] + [g for _, g in parents]
    if conditions:
        lines.append(f"{indent}IF {' AND '.join(conditions)} THEN")
        lines.append(_insert(plan, indent * 2, names))
        lines.append(f"{indent}END IF;")
    else:
        lines.append(_insert(plan, indent, names))
    return "\n".join(lines)


def trigger_sql() -> str:
    """The reviewed-before-use SQL for the sign-up function and trigger (see module doc)."""
    plans = plan_tables(SPEC)
    wanted = {*FUNCTION, TRIGGER}
    for plan in plans:
        wanted |= {plan.spec.schema, plan.spec.name, plan.spec.key, *plan.columns}
        wanted |= {v.column for v in plan.columns.values() if isinstance(v, AuthColumn)}
        wanted |= {c for link in plan.same_user_parents for c in link.foreign_key.ref_columns}
    names = _Names(wanted)
    skipped: dict[str, str] = {}
    body = "\n\n".join(_table_block(plan, names, skipped) for plan in plans)
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_database()")
        (database,) = cursor.fetchone()
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"""-- The Eloity sign-up trigger, generated by manage.py provisioning_trigger_sql
-- from provisioning/spec/ and the live catalog of database {database} ({stamp}).
-- Review it, then apply it as a migration, as the owner of the app tables and
-- of auth.users' triggers (on Supabase: the SQL editor, or a supabase/migrations file).
-- It writes only columns the tables have today: regenerate it after changing them.
-- Users who signed up while the trigger was broken still need their rows:
-- run "Provision all missing" (or manage.py provision --all-missing) afterwards.

{function_and_trigger(names(*FUNCTION), names(TRIGGER), body, on="AFTER INSERT ON auth.users")}"""


def function_and_trigger(function: str, trigger: str, body: str, *, on: str, when: str = "") -> str:
    """A SECURITY DEFINER trigger function with `search_path = ''` around `body`, and the
    row-level trigger on auth.users that runs it (`on`: "AFTER INSERT ON auth.users";
    `when`: a WHEN condition). Names come quoted. ValueError when the body holds the
    function's dollar quote."""
    if _QUOTE in body:
        raise ValueError(f"a spec value contains {_QUOTE}")
    execute = f"\n    WHEN ({when})\n    EXECUTE" if when else " EXECUTE"
    return f"""CREATE OR REPLACE FUNCTION {function}()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = ''
AS {_QUOTE}
BEGIN
{body}

    RETURN NEW;
END;
{_QUOTE};

DROP TRIGGER IF EXISTS {trigger} ON auth.users;
CREATE TRIGGER {trigger}
    {on}
    FOR EACH ROW{execute} FUNCTION {function}();
"""
