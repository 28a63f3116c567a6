"""Provisioning health: why accounts are broken, before anyone fixes them.

Each check is a function returning a `Check` (status ok / warning / problem, what was
found, what to do). Everything here only reads, with two exceptions, both on demand, both
needing `provisioning.provision_users`, both audited:

- `simulate_signup` inserts one synthetic auth user inside a transaction that is always
  rolled back, to see what the sign-up trigger really does; only its AuditEvent survives.
- `reload_schema_cache` sends `NOTIFY pgrst, 'reload schema'`.

Nothing here runs DDL: where a fix needs DDL, the advice carries the exact statement for a
person to review and apply as a migration.
"""

from __future__ import annotations

import difflib
import re
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from django.db import DatabaseError, connection, transaction
from psycopg import sql

from provisioning import catalog, selectors, services, statements
from provisioning.actors import Actor
from provisioning.models import AuditEvent
from provisioning.plans import TablePlan, plan_table
from provisioning.spec import SPEC, TABLE_NAMES, TableSpec

OK = "ok"
WARNING = "warning"
PROBLEM = "problem"
STATUSES = (OK, WARNING, PROBLEM)
_RANK = {OK: 0, WARNING: 1, PROBLEM: 2}

#: The sign-up trigger and function the Eloity project uses (and `provisioning_trigger_sql` writes).
AUTH_SCHEMA, AUTH_TABLE = "auth", "users"
SIGNUP_FUNCTION = ("public", "handle_new_user")
SIGNUP_TRIGGER = "on_auth_user_created"
#: How many sample rows a check shows.
SAMPLE = 5
#: The simulated sign-up gives up after this long (a lock held on an app table, say).
SIMULATION_TIMEOUT = "15s"

Action = AuditEvent.Action
Outcome = AuditEvent.Outcome


@dataclass
class Check:
    """One finding. `details` is JSON-ready; the page shows its `definition`, `statements`
    and `rows` keys specially."""

    name: str
    status: str
    found: str
    advice: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == OK

    def as_dict(self) -> dict:
        return asdict(self)


def quote_ident(*parts: str) -> str:
    """A dotted name as PostgreSQL's quote_ident() writes it: bare where that is exact, so the
    statements in the advice read like hand-written SQL (`public.profiles`)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT string_agg(quote_ident(p), '.' ORDER BY i) FROM unnest(%s::text[]) WITH ORDINALITY AS t(p, i)",
            [list(parts)],
        )
        return cursor.fetchone()[0]


def worst(statuses) -> str:
    return max(statuses, key=_RANK.__getitem__, default=OK)


def _combine(name: str, findings: list[tuple[str, str, str]], ok_text: str, details: dict) -> Check:
    """A check from (status, found, advice) findings: the worst status, every finding."""
    if not findings:
        return Check(name, OK, ok_text, "", details)
    return Check(
        name,
        worst(f[0] for f in findings),
        " ".join(f[1] for f in findings),
        " ".join(dict.fromkeys(f[2] for f in findings if f[2])),
        details,
    )


# --- 1. The sign-up trigger and its function ------------------------------------------------

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
        found.append(FunctionInsert(table, _names(match["columns"]), _names(conflict["target"]) if conflict else None))
    return found


def signup_triggers() -> list[catalog.Trigger]:
    """Row-level INSERT triggers on auth.users that call the sign-up function or any function
    that inserts into an app table."""
    found = []
    for trigger in catalog.triggers(AUTH_SCHEMA, AUTH_TABLE):
        if not (trigger.for_each_row and trigger.on_insert):
            continue
        if (trigger.function_schema, trigger.function_name) == SIGNUP_FUNCTION:
            found.append(trigger)
            continue
        function = catalog.function(trigger.function_schema, trigger.function_name)
        if function is not None and app_table_inserts(function.definition):
            found.append(trigger)
    return found


def check_trigger() -> Check:
    """A trigger on auth.users that provisions sign-ups exists and fires."""
    name = "Sign-up trigger"
    signup = "public.handle_new_user()"
    candidates = signup_triggers()
    others = [t.definition for t in catalog.triggers(AUTH_SCHEMA, AUTH_TABLE) if t not in candidates]
    details: dict[str, Any] = {
        "triggers": [{"name": t.name, "function": t.function, "state": t.state} for t in candidates],
        "other_triggers_on_auth_users": others,
        "statements": [t.definition for t in candidates],
    }
    generate = "Review and apply the SQL from `manage.py provisioning_trigger_sql` as a migration"
    backfill = "then provision the users who signed up meanwhile (Provision all missing)."
    if not catalog.table_exists(AUTH_SCHEMA, AUTH_TABLE):
        return Check(
            name, PROBLEM, "auth.users does not exist on this database.", "Point DATABASE_URL at the Supabase database."
        )
    if not candidates:
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
    return _combine(
        name,
        findings,
        f"{trigger.name} (AFTER INSERT, FOR EACH ROW) on auth.users calls {trigger.function}() and is {trigger.state}.",
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
            "Review and apply the SQL from `manage.py provisioning_trigger_sql` as a migration.",
        )
    inserts = app_table_inserts(function.definition)
    details: dict[str, Any] = {
        "function": qualified,
        "definition": function.definition,
        "writes": {i.table: list(i.columns) for i in inserts},
    }
    regenerate = "Replace the function with the one `manage.py provisioning_trigger_sql` prints (review it first)."
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
    tables = ", ".join(f"public.{t}" for t in TABLE_NAMES if t in written)
    return _combine(name, findings, f"{qualified} exists and writes only existing columns of {tables}.", details)


# --- 2. The simulated sign-up ---------------------------------------------------------------


class _RollBack(Exception):
    """Raised to roll the simulated sign-up back, whatever happened inside it."""


def _error_details(exc: DatabaseError) -> dict[str, str]:
    cause = exc.__cause__
    diag = getattr(cause, "diag", None)
    message = (getattr(diag, "message_primary", None) or str(exc).strip().splitlines()[0]) if str(exc) else ""
    return {
        "sqlstate": getattr(cause, "sqlstate", None) or "",
        "message": message or exc.__class__.__name__,
        "detail": getattr(diag, "message_detail", None) or "",
        "hint": getattr(diag, "message_hint", None) or "",
        "context": getattr(diag, "context", None) or "",
    }


def _rows_for(user_id: uuid.UUID) -> dict[str, int | None]:
    """How many rows each app table holds for `user_id` (None when the table cannot be read)."""
    found: dict[str, int | None] = {}
    with connection.cursor() as cursor:
        for spec in SPEC:
            if spec.key not in catalog.columns(spec.schema, spec.name):
                found[spec.name] = None
                continue
            cursor.execute(
                sql.SQL("SELECT count(*) FROM {} WHERE {} = %s").format(spec.identifier(), sql.Identifier(spec.key)),
                [user_id],
            )
            found[spec.name] = cursor.fetchone()[0]
    return found


def _simulated_insert(user_id: uuid.UUID, email: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO auth.users (id, aud, role, email, raw_app_meta_data, raw_user_meta_data,
                                    created_at, updated_at)
            VALUES (%s, 'authenticated', 'authenticated', %s, '{"provider": "email"}'::jsonb,
                    '{"full_name": "Simulated Sign-up"}'::jsonb, now(), now())
            """,
            [user_id, email],
        )


def _advice_for_error(error: dict[str, str]) -> str:
    regenerate = "`manage.py provisioning_trigger_sql` prints a function that writes only existing columns."
    by_state = {
        "42703": f"The trigger writes a column the table lacks. {regenerate}",
        "42P10": "The trigger's ON CONFLICT needs a unique index on the key column: create it (see the table "
        f"checks) or replace the function. {regenerate}",
        "23502": f"The trigger leaves a NOT NULL column empty. {regenerate}",
        "23505": "A unique value the trigger writes is already taken (often by an orphaned app row): see the "
        "orphan check.",
        "42P01": f"The trigger writes to a table that does not exist. {regenerate}",
    }
    return by_state.get(error["sqlstate"], "Read the error and the function's definition (Sign-up function check).")


def simulate_signup(*, actor: Actor) -> Check:
    """Insert one synthetic auth user and report what the sign-up trigger did.

    Runs inside a transaction (a savepoint when one is open) that is always rolled back:
    no auth user, no app row survives. Afterwards one AuditEvent (simulate_signup) records
    that it ran and what it saw. Raises services.ProvisioningDenied (after recording a
    denied event) when `actor` lacks provisioning.provision_users.
    """
    if not actor.may_provision():
        services.record_denied(actor=actor, action=Action.SIMULATE_SIGNUP)
        raise services.ProvisioningDenied("You do not have permission to simulate a sign-up.")
    user_id = uuid.uuid4()
    email = f"simulated-signup-{user_id.hex[:12]}@eloity-admin.invalid"
    error: dict[str, str] | None = None
    rows: dict[str, int | None] = {}
    firing = [t.name for t in catalog.triggers(AUTH_SCHEMA, AUTH_TABLE) if t.fires and t.on_insert]
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('statement_timeout', %s, true)", [SIMULATION_TIMEOUT])
            try:
                with transaction.atomic():
                    _simulated_insert(user_id, email)
            except DatabaseError as exc:
                error = _error_details(exc)
            else:
                rows = _rows_for(user_id)
            raise _RollBack
    except _RollBack:
        pass

    appeared = [t for t, n in rows.items() if n]
    missing = [t for t in TABLE_NAMES if t not in appeared]
    details: dict[str, Any] = {
        "synthetic_user_id": str(user_id),
        "synthetic_email": email,
        "triggers_fired": firing,
        "rows_appeared": appeared,
        "rows_missing": missing,
        "error": error,
        "rolled_back": True,
        "rows": [{"table": f"public.{t}", "row after sign-up": "yes" if rows.get(t) else "no"} for t in TABLE_NAMES],
    }
    if error is not None:
        trigger_raised = bool(error["context"]) or error["sqlstate"] != "42501"
        if trigger_raised:
            check = Check(
                "Simulated sign-up",
                PROBLEM,
                f"The sign-up failed: the database raised `{error['message']}` (SQLSTATE {error['sqlstate']})"
                + (f" in {error['context'].splitlines()[0]}" if error["context"] else "")
                + ". Supabase answers such a sign-up with “Database error saving new user”.",
                _advice_for_error(error),
                details,
            )
        else:
            check = Check(
                "Simulated sign-up",
                WARNING,
                f"Could not simulate: the dashboard's database role may not insert into auth.users "
                f"(`{error['message']}`).",
                "Run the simulation as a role that may insert into auth.users, or rely on the other checks.",
                details,
            )
    elif missing:
        check = Check(
            "Simulated sign-up",
            PROBLEM,
            "The sign-up succeeded but got no row in "
            + ", ".join(f"public.{t}" for t in missing)
            + (f" (it got {', '.join(f'public.{t}' for t in appeared)})." if appeared else ".")
            + ("" if firing else " No INSERT trigger on auth.users fired."),
            "See the Sign-up trigger and Sign-up function checks; "
            "`manage.py provisioning_trigger_sql` prints a trigger that writes every table.",
            details,
        )
    else:
        check = Check(
            "Simulated sign-up",
            OK,
            "A synthetic sign-up got its app user, profile and wallet; everything was rolled back.",
            "",
            details,
        )
    _record(actor, Action.SIMULATE_SIGNUP, Outcome.SUCCEEDED if check.ok else Outcome.FAILED, check.as_dict())
    return check


#: run_checks' argument `simulate_signup` shadows the function's name inside it.
_simulate_signup = simulate_signup


def _record(actor: Actor, action: str, outcome: str, detail: dict) -> AuditEvent:
    with transaction.atomic():
        return AuditEvent.objects.create(
            actor=actor.user if actor.user is not None and actor.user.pk else None,
            actor_username=actor.username[:150],
            channel=actor.channel,
            action=action,
            outcome=outcome,
            tables=list(TABLE_NAMES),
            client_address=actor.address,
            detail=detail,
        )


# --- 3. Schema drift and key indexes, per app table -------------------------------------------


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
                "Give the column a default, or add it to provisioning/spec.py.",
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
    return _combine(
        name,
        findings,
        f"{spec.qualified_name} has every column the spec writes; {spec.key} is unique and of type {key_type}.",
        details,
    )


def key_index_statement(spec: TableSpec) -> str | None:
    """`CREATE INDEX CONCURRENTLY ...` for the key column of `spec`'s table when no valid,
    non-partial index leads with it; None when one does (or the table or key is missing)."""
    if spec.key not in catalog.columns(spec.schema, spec.name):
        return None
    existing = catalog.indexes(spec.schema, spec.name)
    if any(i.leading_column == spec.key and i.valid and not i.partial for i in existing):
        return None
    index_name = f"{spec.name}_{spec.key}_idx"
    table = quote_ident(spec.schema, spec.name)
    statement = f"CREATE INDEX CONCURRENTLY {quote_ident(index_name)} ON {table} ({quote_ident(spec.key)});"
    if any(i.name == index_name for i in existing):
        # A failed CREATE INDEX CONCURRENTLY left an invalid index of that name behind.
        statement = f"DROP INDEX CONCURRENTLY {quote_ident(spec.schema, index_name)}; {statement}"
    return statement


def check_key_index(spec: TableSpec) -> Check | None:
    """The key column is indexed (every "is this user missing a row" lookup uses it)."""
    if spec.key not in catalog.columns(spec.schema, spec.name):
        return None  # check_table reports it
    statement = key_index_statement(spec)
    name = f"Index on {spec.qualified_name}.{spec.key}"
    if statement is None:
        index = next(i for i in catalog.indexes(spec.schema, spec.name) if i.leading_column == spec.key and i.valid)
        return Check(name, OK, f"{spec.key} is indexed ({index.name}).", "", {"statements": [index.definition]})
    invalid = [i.name for i in catalog.indexes(spec.schema, spec.name) if i.leading_column == spec.key and not i.valid]
    found = f"No usable index leads with {spec.qualified_name}.{spec.key}"
    found += f" ({', '.join(invalid)} is invalid, left by a failed build)" if invalid else ""
    return Check(
        name,
        WARNING,
        found + ": every missing-row lookup and provisioning batch scans the whole table.",
        f"Apply `{statement}` (CONCURRENTLY does not block sign-ups; it cannot run inside a transaction block).",
        {"statements": [statement]},
    )


# --- 4. PostgREST schema cache ----------------------------------------------------------------

_SCHEMA_CACHE = re.compile(
    r"could not find the '(?P<column>[^']+)' column of '(?P<table>[^']+)' in the schema cache", re.IGNORECASE
)
_DOTTED = re.compile(r"^(?:(?P<schema>\w+)\.)?(?P<table>\w+)\.(?P<column>\w+)$")
_IDENTIFIER = re.compile(r"^\w{1,63}$")


class BadQuestion(ValueError):
    """The schema cache question could not be understood (the message says why)."""


def parse_schema_cache_question(text: str, table: str = "") -> tuple[str, str, str]:
    """(schema, table, column) from a PostgREST message (`Could not find the 'id' column of
    'profiles' in the schema cache`), `table.column`, or a column name plus `table`."""
    text = (text or "").replace("\x00", "").strip()[:2000]
    table = (table or "").replace("\x00", "").strip()
    schema = "public"
    match = _SCHEMA_CACHE.search(text)
    if match:
        column, table_text = match["column"], match["table"]
        if "." in table_text:
            schema, table_text = table_text.split(".", 1)
        table = table_text
    elif _DOTTED.match(text):
        dotted = _DOTTED.match(text)
        schema, table, column = dotted["schema"] or "public", dotted["table"], dotted["column"]
    elif text:
        column = text.strip("'\"")
    else:
        raise BadQuestion("Paste the API's error message, or give a column name.")
    if not table:
        raise BadQuestion("Which table? Give it with the column (profiles.id) or paste the whole message.")
    for label, value in (("schema", schema), ("table", table), ("column", column)):
        if not _IDENTIFIER.match(value):
            raise BadQuestion(f"“{value[:80]}” is not a plain {label} name.")
    return schema, table, column


def closest_names(name: str, candidates: list[str], n: int = 3) -> list[str]:
    """The candidates most like `name`: those holding it as a word (`id` -> `user_id`) first,
    then difflib's closest matches."""
    words = [c for c in candidates if name in c.split("_") and c != name]
    similar = difflib.get_close_matches(name, candidates, n=n, cutoff=0.4)
    return list(dict.fromkeys(words + similar))[:n]


def check_schema_cache(text: str, table: str = "") -> Check:
    """Which cause a PGRST204 `Could not find the 'X' column of 'T' in the schema cache` has:
    the column does not exist (schema drift) or exists (PostgREST's cache is stale).
    Raises BadQuestion when `text` cannot be understood."""
    schema, table, column = parse_schema_cache_question(text, table)
    name = "PostgREST schema cache"
    qualified = f"{schema}.{table}"
    live = catalog.columns(schema, table)
    details: dict[str, Any] = {"schema": schema, "table": table, "column": column}
    if not live:
        close = closest_names(table, catalog.tables(schema))
        details["closest_tables"] = close
        hint = f" Closest tables: {', '.join(close)}." if close else ""
        return Check(
            name,
            PROBLEM,
            f"There is no table {qualified}: the client names a table this database does not have.{hint}",
            "Fix the client's table name; reloading the cache will not help.",
            details,
        )
    if column in live:
        details["column_type"] = live[column].data_type
        return Check(
            name,
            WARNING,
            f"{qualified}.{column} exists ({live[column].data_type}): PostgREST's schema cache is stale.",
            "Reload PostgREST's schema cache (the button below, or `NOTIFY pgrst, 'reload schema';`), then retry.",
            details,
        )
    close = closest_names(column, list(live))
    details["closest_columns"] = close
    hint = f" Closest existing columns: {', '.join(close)}." if close else ""
    return Check(
        name,
        PROBLEM,
        f"{qualified} has no column {column}: this is schema drift, not a stale cache.{hint}",
        f"Fix the client (backfill script, app) to write a column {qualified} has"
        + (f", probably {close[0]}" if close else "")
        + "; reloading the cache will not help.",
        details,
    )


def reload_schema_cache(*, actor: Actor) -> AuditEvent:
    """Send `NOTIFY pgrst, 'reload schema'` (delivered when the transaction commits) and
    record it. Raises services.ProvisioningDenied (after recording a denied event) when
    `actor` lacks provisioning.provision_users."""
    if not actor.may_provision():
        services.record_denied(actor=actor, action=Action.RELOAD_SCHEMA_CACHE)
        raise services.ProvisioningDenied("You do not have permission to reload the schema cache.")
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("NOTIFY pgrst, 'reload schema'")
        return _record(actor, Action.RELOAD_SCHEMA_CACHE, Outcome.SUCCEEDED, {"channel": "pgrst"})


# --- 5. Orphans and duplicates ----------------------------------------------------------------


def _readable(spec: TableSpec) -> bool:
    return spec.key in catalog.columns(spec.schema, spec.name)


def check_orphans() -> Check:
    """App rows whose auth user no longer exists: counts and a sample. Read-only."""
    rows = []
    with connection.cursor() as cursor:
        for spec in SPEC:
            if not _readable(spec):
                continue
            orphan = sql.SQL("FROM {t} x WHERE NOT EXISTS (SELECT 1 FROM {auth} u WHERE u.id = x.{k})").format(
                t=spec.identifier(), auth=statements.AUTH_USERS, k=sql.Identifier(spec.key)
            )
            cursor.execute(sql.SQL("SELECT count(*) {}").format(orphan))
            (n,) = cursor.fetchone()
            if n:
                cursor.execute(
                    sql.SQL("SELECT x.{k} {o} ORDER BY x.{k} LIMIT %s").format(k=sql.Identifier(spec.key), o=orphan),
                    [SAMPLE],
                )
                sample = ", ".join(str(r[0]) for r in cursor.fetchall())
                rows.append({"table": spec.qualified_name, "orphaned rows": n, "sample user ids": sample})
    if not rows:
        return Check("Orphaned app rows", OK, "Every app row belongs to an existing auth user.", "", {})
    total = sum(r["orphaned rows"] for r in rows)
    where = ", ".join(f"{r['orphaned rows']} in {r['table']}" for r in rows)
    return Check(
        "Orphaned app rows",
        WARNING,
        f"{total} app row(s) belong to auth users that no longer exist ({where}).",
        "They do not break sign-ups, but they hold unique values (an email, a username) a new sign-up may "
        "collide with. Review and delete them in a migration; the dashboard never deletes app rows.",
        {"rows": rows},
    )


def check_duplicates() -> Check:
    """Users with more than one row in a table that should hold one per user. Read-only."""
    rows = []
    statements_needed = []
    with connection.cursor() as cursor:
        for spec in SPEC:
            if not _readable(spec) or plan_table(spec).key_is_unique:
                continue  # a unique key rules duplicates out
            grouped = sql.SQL(
                "SELECT {k}, count(*) AS n FROM {t} WHERE {k} IS NOT NULL GROUP BY {k} HAVING count(*) > 1"
            )
            grouped = grouped.format(k=sql.Identifier(spec.key), t=spec.identifier())
            cursor.execute(sql.SQL("SELECT count(*), coalesce(sum(n), 0) FROM ({}) d").format(grouped))
            users, total = cursor.fetchone()
            if users:
                cursor.execute(sql.SQL("{} ORDER BY n DESC, 1 LIMIT %s").format(grouped), [SAMPLE])
                sample = ", ".join(f"{key} ({n})" for key, n in cursor.fetchall())
                rows.append({"table": spec.qualified_name, "users": users, "rows": int(total), "sample (rows)": sample})
                statements_needed.append(unique_index_statement(spec))
    if not rows:
        return Check("Duplicate app rows", OK, "No user has more than one row in an app table.", "", {})
    where = ", ".join(f"{r['users']} user(s) with {r['rows']} rows in {r['table']}" for r in rows)
    return Check(
        "Duplicate app rows",
        PROBLEM,
        f"Some users have more than one row: {where}. The app reads one at random.",
        "Keep one row per user (the oldest, merged by hand where they differ) in a reviewed migration, then "
        f"apply {' '.join(f'`{s}`' for s in statements_needed)} so it cannot happen again.",
        {"rows": rows, "statements": statements_needed},
    )


# --- 6. Coverage ------------------------------------------------------------------------------


def missing_by_week(plans: list[TablePlan] | None = None) -> list[dict]:
    """Per week of sign-up (date_trunc('week', created_at)), live sign-ups and how many miss a
    row in each app table; only weeks with a gap, most recent first. One anti-join per table."""
    plans = plans if plans is not None else [plan_table(spec) for spec in SPEC]
    weeks: dict = {}
    week = sql.SQL("date_trunc('week', u.created_at)")
    with connection.cursor() as cursor:
        for plan in plans:
            cursor.execute(
                sql.SQL("SELECT {w}, count(*) FROM {auth} u WHERE {pop} AND {missing} GROUP BY 1").format(
                    w=week, auth=statements.AUTH_USERS, pop=statements.POPULATION, missing=statements.missing(plan)
                )
            )
            for start, n in cursor.fetchall():
                weeks.setdefault(start, {})[plan.name] = n
        if not weeks:
            return []
        cursor.execute(
            sql.SQL("SELECT {w}, count(*) FROM {auth} u WHERE {pop} GROUP BY 1").format(
                w=week, auth=statements.AUTH_USERS, pop=statements.POPULATION
            )
        )
        signups = dict(cursor.fetchall())
    order = sorted(weeks, key=lambda w: (w is not None, w), reverse=True)
    result = []
    for start in order:
        row = {"week of": start.date().isoformat() if start else "unknown", "sign-ups": signups.get(start, 0)}
        row.update({f"missing {p.name}": weeks[start].get(p.name, 0) for p in plans})
        result.append(row)
    return result


def check_coverage() -> Check:
    """Live sign-ups missing app rows, by week of sign-up: when the trigger stopped working."""
    plans = [plan_table(spec) for spec in SPEC]
    weeks = missing_by_week(plans)
    if not weeks:
        return Check("Sign-ups missing rows", OK, "Every live sign-up has its app user, profile and wallet.", "", {})
    totals = {p.name: sum(w[f"missing {p.name}"] for w in weeks) for p in plans}
    all_missing = [w["week of"] for w in weeks if any(w[f"missing {p.name}"] == w["sign-ups"] for p in plans)]
    found = (
        "Live sign-ups are missing rows: "
        + ", ".join(f"{n} {t}" for t, n in totals.items() if n)
        + f"; gaps in {len(weeks)} week(s), most recently the week of {weeks[0]['week of']}."
    )
    if all_missing:
        found += (
            f" In {len(all_missing)} week(s) a table got no row for any sign-up (the trigger was off or broken), "
            f"most recently the week of {all_missing[0]}."
        )
    return Check(
        "Sign-ups missing rows",
        WARNING,
        found,
        "Fix the cause first (trigger checks above), then Provision all missing (or `manage.py provision "
        "--all-missing`).",
        {"rows": weeks[:60], "missing": totals},
    )


def check_cannot_provision() -> Check:
    """Users missing a row that provisioning cannot write, grouped by reason."""
    counts, sample = selectors.cannot_provision(sample=SAMPLE)
    if not counts:
        return Check("Users that cannot be provisioned", OK, "Every missing row can be provisioned.", "", {})
    total = sum(counts.values())
    return Check(
        "Users that cannot be provisioned",
        WARNING,
        f"{total} missing row(s) cannot be provisioned: "
        + "; ".join(f"{n} x {reason}" for reason, n in sorted(counts.items(), key=lambda kv: -kv[1]))
        + ".",
        "Expected for phone-only sign-ups where public.users.email is NOT NULL; otherwise fix the data "
        "(a colliding orphan row, say) and provision again.",
        {"rows": [{"reason": r, "rows": n} for r, n in counts.items()], "sample": sample},
    )


# --- The report -------------------------------------------------------------------------------


@dataclass
class Report:
    checks: list[Check]

    @property
    def status(self) -> str:
        return worst(c.status for c in self.checks)

    @property
    def counts(self) -> dict[str, int]:
        return {s: sum(c.status == s for c in self.checks) for s in STATUSES}

    def as_dict(self) -> dict:
        return {"status": self.status, "counts": self.counts, "checks": [c.as_dict() for c in self.checks]}


#: (the check's name, should it fail to run; the check)
_Step = tuple[str, Callable[[], Check | None]]


def _catalog_checks() -> list[_Step]:
    auth_id = catalog.column_type(AUTH_SCHEMA, AUTH_TABLE, "id")
    steps: list[_Step] = [("Sign-up trigger", check_trigger), ("Sign-up function", check_function)]
    steps += [(f"Table {s.qualified_name}", lambda s=s: check_table(s, auth_id)) for s in SPEC]
    steps += [(f"Index on {s.qualified_name}.{s.key}", lambda s=s: check_key_index(s)) for s in SPEC]
    return steps


def _data_checks() -> list[_Step]:
    return [
        ("Orphaned app rows", check_orphans),
        ("Duplicate app rows", check_duplicates),
        ("Sign-ups missing rows", check_coverage),
        ("Users that cannot be provisioned", check_cannot_provision),
    ]


def _run(steps: list[_Step], *, raise_errors: bool) -> list[Check]:
    results = []
    for name, check in steps:
        if raise_errors:
            result = check()
        else:
            try:
                # A savepoint, so one failing check leaves the others a usable transaction.
                with transaction.atomic():
                    result = check()
            except DatabaseError as exc:
                result = Check(name, PROBLEM, f"The check could not run: {_error_details(exc)['message']}.")
        if result is not None:
            results.append(result)
    return results


def run_checks(simulate_signup: bool = False, *, actor: Actor | None = None, raise_errors: bool = False) -> Report:
    """Every check. With `simulate_signup`, also the simulated sign-up (needs `actor`, who
    must hold the provision permission; see `simulate_signup`). A check that hits a
    database error becomes a problem naming the error, unless `raise_errors`."""
    if simulate_signup and actor is None:
        raise ValueError("a simulated sign-up needs an actor")
    checks = _run(_catalog_checks() + _data_checks(), raise_errors=raise_errors)
    if simulate_signup:
        checks.insert(2, _simulate_signup(actor=actor))
    return Report(checks)


@dataclass
class HealthSummary:
    status: str
    counts: dict[str, int]
    attention: list[dict[str, str]]  # name and status of each check that is not ok

    def as_dict(self) -> dict:
        return asdict(self)


def summary() -> HealthSummary:
    """Worst status and counts per status of the catalog checks (trigger, function, tables,
    key indexes): catalog reads only, no table scans, no simulated sign-up. For the home page."""
    report = Report(_run(_catalog_checks(), raise_errors=False))
    return HealthSummary(
        status=report.status,
        counts=report.counts,
        attention=[{"name": c.name, "status": c.status} for c in report.checks if not c.ok],
    )
