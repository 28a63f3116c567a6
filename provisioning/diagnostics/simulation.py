"""The simulated sign-up: insert one synthetic auth user, see what the sign-up trigger
really does, roll everything back. The one check that writes (and is audited)."""

from __future__ import annotations

import uuid
from typing import Any

from django.db import DatabaseError, connection, transaction
from psycopg import sql

from provisioning.actors import Actor
from provisioning.diagnostics.audit import Action, Outcome, record
from provisioning.diagnostics.findings import (
    AUTH_SCHEMA,
    AUTH_TABLE,
    GENERATED_SQL,
    GENERATED_TRIGGER,
    OK,
    PROBLEM,
    WARNING,
    Check,
    error_details,
)
from provisioning.engine import catalog, services, statements
from provisioning.engine.plans import plan_tables
from provisioning.spec import SPEC, TABLE_NAMES

#: The simulated sign-up gives up after this long (a lock held on an app table, say).
SIMULATION_TIMEOUT = "15s"


class _RollBack(Exception):
    """Raised to roll the simulated sign-up back, whatever happened inside it."""


def _tables_with_row(user_id: uuid.UUID) -> set[str]:
    """The app tables holding a row for `user_id`, in one statement (a table that cannot be
    read by its key holds none)."""
    plans = plan_tables(SPEC)
    has_row = sql.SQL(", ").join(sql.SQL("NOT {}").format(statements.missing(plan)) for plan in plans)
    with connection.cursor() as cursor:
        cursor.execute(sql.SQL("SELECT {} FROM (SELECT %s::uuid AS id) u").format(has_row), [user_id])
        found = cursor.fetchone()
    return {plan.name for plan, has in zip(plans, found, strict=True) if has}


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


#: The errors the generated sign-up function does away with.
_REGENERATE_STATES = ("42703", "42P10", "23502", "42P01")


def _advice_for_error(error: dict[str, str]) -> str:
    regenerate = f"{GENERATED_SQL[0].upper()}{GENERATED_SQL[1:]} writes only existing columns."
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
    services.require_provisioning(actor=actor, action=Action.SIMULATE_SIGNUP, what="simulate a sign-up")
    user_id = uuid.uuid4()
    email = f"simulated-signup-{user_id.hex[:12]}@eloity-admin.invalid"
    error: dict[str, str] | None = None
    with_row: set[str] = set()
    firing = [t.name for t in catalog.triggers(AUTH_SCHEMA, AUTH_TABLE) if t.fires and t.on_insert]
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('statement_timeout', %s, true)", [SIMULATION_TIMEOUT])
            try:
                with transaction.atomic():
                    _simulated_insert(user_id, email)
            except DatabaseError as exc:
                error = error_details(exc)
            else:
                with_row = _tables_with_row(user_id)
            raise _RollBack
    except _RollBack:
        pass

    appeared = [t for t in TABLE_NAMES if t in with_row]
    missing = [t for t in TABLE_NAMES if t not in appeared]
    details: dict[str, Any] = {
        "synthetic_user_id": str(user_id),
        "synthetic_email": email,
        "triggers_fired": firing,
        "rows_appeared": appeared,
        "rows_missing": missing,
        "error": error,
        "rolled_back": True,
        "rows": [{"table": f"public.{t}", "row after sign-up": "yes" if t in with_row else "no"} for t in TABLE_NAMES],
    }
    if error is not None:
        trigger_raised = bool(error["context"]) or error["sqlstate"] != "42501"
        if trigger_raised:
            if error["sqlstate"] in _REGENERATE_STATES:
                details[GENERATED_TRIGGER] = True
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
        details[GENERATED_TRIGGER] = True
        check = Check(
            "Simulated sign-up",
            PROBLEM,
            "The sign-up succeeded but got no row in "
            + ", ".join(f"public.{t}" for t in missing)
            + (f" (it got {', '.join(f'public.{t}' for t in appeared)})." if appeared else ".")
            + ("" if firing else " No INSERT trigger on auth.users fired."),
            f"See the Sign-up trigger and Sign-up function checks; {GENERATED_SQL} writes every table.",
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
    record(actor, Action.SIMULATE_SIGNUP, Outcome.SUCCEEDED if check.ok else Outcome.FAILED, check.as_dict())
    return check
