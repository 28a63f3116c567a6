"""The sign-up trigger on auth.users and the function it calls: does a trigger provision
sign-ups, does it fire, and does the function write only what the tables have? Read-only."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from provisioning.diagnostics.findings import (
    AUTH_SCHEMA,
    AUTH_TABLE,
    GENERATED_SQL,
    GENERATED_TRIGGER,
    PROBLEM,
    WARNING,
    Check,
    combine,
)
from provisioning.engine import catalog, confirmation, triggergen
from provisioning.engine.triggergen import quote_ident
from provisioning.spec import TABLE_NAMES

#: The sign-up function and trigger the Eloity project uses: the ones `provisioning_trigger_sql` writes.
SIGNUP_FUNCTION = triggergen.FUNCTION
SIGNUP_TRIGGER = triggergen.TRIGGER

_COMMENT = re.compile(r"--[^\n]*")
_INSERT = re.compile(
    r'INSERT\s+INTO\s+(?P<table>(?:"?\w+"?\s*\.\s*)?"?\w+"?)\s*\((?P<columns>[^)]*)\)(?P<rest>[^;]*)', re.IGNORECASE
)
_CONFLICT = re.compile(r"ON\s+CONFLICT\s*\((?P<target>[^)]*)\)", re.IGNORECASE)


@dataclass(frozen=True)
class FunctionInsert:
    """One `INSERT INTO public.<app table> (...)` read from a function's source."""

    table: str
    columns: tuple[str, ...]
    conflict_target: tuple[str, ...] | None
    #: The VALUES expressions, one per column, as written ("" where they could not be read).
    values: tuple[str, ...] = ()

    def value_of(self, column: str) -> str:
        """The expression written to `column`, or "" when it is not known."""
        if len(self.values) != len(self.columns) or column not in self.columns:
            return ""
        return self.values[self.columns.index(column)]


def _names(text: str) -> tuple[str, ...]:
    return tuple(part.strip().strip('"') for part in text.split(",") if part.strip())


def app_table_inserts(definition: str) -> list[FunctionInsert]:
    """The inserts into the app tables in a function's source (a textual reading: enough for
    the plain INSERT ... (columns) VALUES ... [ON CONFLICT (...)] a sign-up trigger uses)."""
    found = []
    for match in _INSERT.finditer(_COMMENT.sub("", definition)):
        parts = [p.strip().strip('"') for p in match["table"].split(".")]
        schema, table = (parts[0], parts[1]) if len(parts) == 2 else (None, parts[0])
        if schema not in (None, "public") or table not in TABLE_NAMES:
            continue
        conflict = _CONFLICT.search(match["rest"])
        found.append(
            FunctionInsert(
                table,
                _names(match["columns"]),
                _names(conflict["target"]) if conflict else None,
                _values(match["rest"]),
            )
        )
    return found


_VALUES = re.compile(r"\s*VALUES\s*\(", re.IGNORECASE)


def _outside_quotes(text: str):
    """(index, character, parenthesis depth after it) for every character of `text` that
    is not inside a quoted literal or identifier."""
    depth, quote = 0, ""
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote else quote
            continue
        if ch in "'\"":
            quote = ch
            continue
        depth += {"(": 1, ")": -1}.get(ch, 0)
        yield i, ch, depth


def split_arguments(text: str) -> list[str]:
    """`text` split at its top-level commas (not inside parentheses or quotes), trimmed."""
    parts, start = [], 0
    for i, ch, depth in _outside_quotes(text):
        if ch == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return parts


def _values(rest: str) -> tuple[str, ...]:
    """The expressions of `VALUES (...)` at the start of `rest` (empty for INSERT ... SELECT)."""
    match = _VALUES.match(rest)
    if not match:
        return ()
    inside = rest[match.end() :]
    for i, ch, depth in _outside_quotes(inside):
        if ch == ")" and depth == -1:
            return tuple(split_arguments(inside[:i]))
    return ()


def inserted_tables(definition: str) -> list[tuple[str | None, str, bool]]:
    """(schema or None, table, quoted?) for every INSERT INTO in a function's source."""
    found = []
    for match in _INSERT.finditer(_COMMENT.sub("", definition)):
        raw = match["table"]
        parts = [p.strip() for p in raw.split(".")]
        quoted = any(p.startswith('"') for p in parts)
        parts = [p.strip('"') for p in parts]
        found.append((parts[0], parts[1], quoted) if len(parts) == 2 else (None, parts[0], quoted))
    return found


def _provisions_signups(trigger: catalog.Trigger, gate: confirmation.Gate | None) -> bool:
    """A row-level INSERT trigger calling the sign-up function or any function that inserts
    into an app table."""
    if not trigger.for_each_row:
        return False
    if not trigger.on_insert:
        # An UPDATE trigger provisions sign-ups where it waits for confirmation (`gate`).
        return trigger.on_update and gate is not None and trigger.name in gate.triggers
    if (trigger.function_schema, trigger.function_name) == SIGNUP_FUNCTION:
        return True
    function = catalog.function(trigger.function_schema, trigger.function_name)
    return function is not None and bool(app_table_inserts(function.definition))


def signup_triggers() -> list[catalog.Trigger]:
    """Row-level INSERT triggers on auth.users that call the sign-up function or any function
    that inserts into an app table."""
    gate = confirmation.gate()
    return [t for t in catalog.triggers(AUTH_SCHEMA, AUTH_TABLE) if _provisions_signups(t, gate)]


def check_trigger() -> Check:
    """A trigger on auth.users that provisions sign-ups exists and fires."""
    name = "Sign-up trigger"
    signup = "public.handle_new_user()"
    on_auth_users = catalog.triggers(AUTH_SCHEMA, AUTH_TABLE)
    gate = confirmation.gate()
    candidates = [t for t in on_auth_users if _provisions_signups(t, gate)]
    others = [t.definition for t in on_auth_users if t not in candidates]
    details: dict[str, Any] = {
        "triggers": [{"name": t.name, "function": t.function, "state": t.state} for t in candidates],
        "other_triggers_on_auth_users": others,
        "statements": [t.definition for t in candidates],
    }
    generate = f"Review {GENERATED_SQL} and apply it as a migration"
    backfill = "then provision the users who signed up meanwhile (Provision all missing)."
    if not catalog.table_exists(AUTH_SCHEMA, AUTH_TABLE):
        return Check(
            name, PROBLEM, "auth.users does not exist on this database.", "Point DATABASE_URL at the Supabase database."
        )
    if not candidates:
        details[GENERATED_TRIGGER] = True
        return Check(
            name,
            PROBLEM,
            f"No trigger on auth.users calls {signup} (or any function that inserts app rows): "
            "every new sign-up gets no app user, profile or wallet.",
            f"{generate}; {backfill}",
            details,
        )
    firing = [t for t in candidates if t.fires]
    if not firing:
        names = ", ".join(f"{t.name} ({t.state}, tgenabled = '{t.enabled}')" for t in candidates)
        enable = " ".join(f"ALTER TABLE auth.users ENABLE TRIGGER {quote_ident(t.name)};" for t in candidates)
        details["statements"].append(enable)
        return Check(
            name,
            PROBLEM,
            f"The sign-up trigger exists but does not fire: {names}. New sign-ups get no app rows.",
            f"Enable it with `{enable}` (as the table's owner, in a migration); {backfill}",
            details,
        )
    findings = []
    if len(firing) > 1:
        findings.append(
            (WARNING, f"{len(firing)} triggers provision sign-ups: {', '.join(t.name for t in firing)}.", "Keep one.")
        )
    for trigger in firing:
        if trigger.before:
            findings.append(
                (
                    WARNING,
                    f"{trigger.name} fires BEFORE INSERT: app rows are written before the auth user exists, "
                    "so a foreign key to auth.users fails.",
                    "Recreate it AFTER INSERT (provisioning_trigger_sql does).",
                )
            )
    trigger = firing[0]
    return combine(
        name,
        findings,
        f"{trigger.name} (AFTER {'INSERT' if trigger.on_insert else 'UPDATE'}, FOR EACH ROW) on auth.users calls "
        f"{trigger.function}() and is {trigger.state}."
        + (f" Provisioning waits for confirmation: {gate.description}." if gate else ""),
        details,
    )


def _signup_function() -> tuple[str, str]:
    """The function the firing sign-up trigger calls, else public.handle_new_user."""
    triggers = signup_triggers()
    chosen = next((t for t in triggers if t.fires), triggers[0] if triggers else None)
    return (chosen.function_schema, chosen.function_name) if chosen else SIGNUP_FUNCTION


def check_function() -> Check:
    """The sign-up function exists, writes only columns the tables have, and its ON CONFLICT
    targets have unique indexes. Its definition is in details["definition"]."""
    schema, fname = _signup_function()
    name = "Sign-up function"
    qualified = f"{schema}.{fname}()"
    function = catalog.function(schema, fname)
    if function is None:
        return Check(
            name,
            PROBLEM,
            f"The function {qualified} does not exist.",
            f"Review {GENERATED_SQL} and apply it as a migration.",
            {GENERATED_TRIGGER: True},
        )
    inserts = app_table_inserts(function.definition)
    details: dict[str, Any] = {
        "function": qualified,
        "definition": function.definition,
        "writes": {i.table: list(i.columns) for i in inserts},
    }
    regenerate = f"Replace the function with {GENERATED_SQL}, after reviewing it."
    findings = []
    written = {i.table for i in inserts}
    for table in TABLE_NAMES:
        if table not in written:
            findings.append((WARNING, f"It does not insert into public.{table}: new sign-ups get none.", regenerate))
    for insert in inserts:
        qualified_table = f"public.{insert.table}"
        live = catalog.columns("public", insert.table)
        if not live:
            findings.append((PROBLEM, f"It inserts into {qualified_table}, which does not exist.", regenerate))
            continue
        absent = [c for c in insert.columns if c not in live]
        if absent:
            listed = ", ".join(f"{qualified_table}.{c}" for c in absent)
            verb = "does" if len(absent) == 1 else "do"
            findings.append(
                (
                    PROBLEM,
                    f"It writes {listed}, which {verb} not exist: every sign-up fails with "
                    f'`column "{absent[0]}" of relation "{insert.table}" does not exist`.',
                    regenerate,
                )
            )
        unfilled = [c.name for c in live.values() if c.required and c.name not in insert.columns]
        if unfilled:
            findings.append(
                (
                    PROBLEM,
                    f"It leaves {qualified_table}.{', '.join(unfilled)} empty, which is NOT NULL with no default: "
                    "every sign-up fails with a not-null violation.",
                    regenerate,
                )
            )
        if insert.conflict_target:
            keys = {frozenset(k.columns) for k in catalog.unique_keys("public", insert.table)}
            if frozenset(insert.conflict_target) not in keys:
                target = ", ".join(insert.conflict_target)
                findings.append(
                    (
                        PROBLEM,
                        f"It uses ON CONFLICT ({target}) on {qualified_table}, which has no unique index on "
                        f"({target}): "
                        "every sign-up fails with `there is no unique or exclusion constraint matching the "
                        "ON CONFLICT specification`.",
                        f"Create the unique index (see the {qualified_table} check), or {regenerate[0].lower()}"
                        f"{regenerate[1:]}",
                    )
                )
    if not function.security_definer:
        findings.append(
            (
                WARNING,
                "It is not SECURITY DEFINER: it runs with the rights of Supabase's auth role, "
                "which may not insert into public tables.",
                regenerate,
            )
        )
    elif not function.sets_search_path:
        findings.append(
            (
                WARNING,
                "It is SECURITY DEFINER without a fixed search_path, which lets a caller's objects shadow its tables.",
                "Add `SET search_path = ''` to the function (provisioning_trigger_sql does).",
            )
        )
    if findings:  # the generated function answers every one of them
        details[GENERATED_TRIGGER] = True
    tables = ", ".join(f"public.{t}" for t in TABLE_NAMES if t in written)
    return combine(name, findings, f"{qualified} exists and writes only existing columns of {tables}.", details)
