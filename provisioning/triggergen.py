"""The sign-up trigger, generated from the spec and the live catalog, for people to review.

`trigger_sql()` returns `CREATE OR REPLACE FUNCTION public.handle_new_user()` plus the
`on_auth_user_created` trigger on auth.users. It writes only columns the live tables have;
uses `ON CONFLICT (<key>) DO NOTHING` only where the key has a unique index (elsewhere a
`WHERE NOT EXISTS` guard, since ON CONFLICT without one raises); skips a table's insert when
a NOT NULL column would get null from the sign-up (public.users without an email). The
dashboard never executes it: a team applies it as a migration.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from django.db import connection
from psycopg import sql

from provisioning.plans import TablePlan, plan_tables
from provisioning.spec import SPEC, AuthColumn, AuthMetadata, Const, JsonConst, Now, Value

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


def new_row_expression(value: Value, names: _Names | None = None) -> str:
    """`value` as a SQL expression inside the trigger, over the new auth user `NEW`."""
    if isinstance(value, AuthColumn):
        if names is not None:
            return f"NEW.{names(value.column)}"
        expression = sql.SQL("NEW.{}").format(sql.Identifier(value.column))
    elif isinstance(value, AuthMetadata):
        expression = sql.SQL("(NEW.raw_user_meta_data ->> {})").format(sql.Literal(value.key))
    elif isinstance(value, JsonConst):
        expression = sql.SQL("{}::jsonb").format(sql.Literal(json.dumps(value.value)))
    elif isinstance(value, Const):
        expression = sql.Literal(value.value)
    elif isinstance(value, Now):
        expression = sql.SQL("now()")
    else:
        raise TypeError(f"no trigger expression for {value!r}")
    return expression.as_string()


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
    values = _wrap([new_row_expression(v, names) for v in plan.columns.values()], indent + "    ")
    key_value = new_row_expression(plan.columns[plan.spec.key], names)
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


def _table_block(plan: TablePlan, names: _Names) -> str:
    indent = "    "
    name = plan.spec.qualified_name
    if plan.table_problem:
        return f"{indent}-- {name} skipped: {plan.table_problem}."
    lines = []
    if plan.skipped_columns:
        lines.append(f"{indent}-- {name} lacks {', '.join(plan.skipped_columns)} (in the spec): not written.")
    guards = []
    for blocker in plan.blockers:
        if blocker.kind != "null":
            continue
        (column,) = blocker.columns
        guards.append((column, f"{new_row_expression(plan.columns[column], names)} IS NOT NULL"))
    if guards:
        why = ", ".join(c for c, _ in guards)
        lines.append(f"{indent}-- {name}.{why} is NOT NULL: a sign-up without it gets no row here instead of failing.")
        lines.append(f"{indent}IF {' AND '.join(g for _, g in guards)} THEN")
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
    names = _Names(wanted)
    body = "\n\n".join(_table_block(plan, names) for plan in plans)
    if _QUOTE in body:
        raise ValueError(f"a spec value contains {_QUOTE}")
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_database()")
        (database,) = cursor.fetchone()
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    function = names(*FUNCTION)
    trigger = names(TRIGGER)
    return f"""-- The Eloity sign-up trigger, generated by `manage.py provisioning_trigger_sql`
-- from provisioning/spec.py and the live catalog of database {database} ({stamp}).
-- Review it, then apply it as a migration, as the owner of the app tables and
-- of auth.users' triggers (on Supabase: the SQL editor, or a supabase/migrations file).
-- It writes only columns the tables have today: regenerate it after changing them.
-- Users who signed up while the trigger was broken still need their rows:
-- run "Provision all missing" (or `manage.py provision --all-missing`) afterwards.

CREATE OR REPLACE FUNCTION {function}()
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
    AFTER INSERT ON auth.users
    FOR EACH ROW EXECUTE FUNCTION {function}();
"""
