"""Provisioning health: why accounts are broken, before anyone fixes them.

Each check is a function returning a `Check` (status ok / warning / problem, what was
found, what to do). Everything here only reads, with two exceptions, both on demand, both
needing `provisioning.provision_users`, both audited:

- `simulate_signup` inserts one synthetic auth user inside a transaction that is always
  rolled back, to see what the sign-up trigger really does; only its AuditEvent survives.
- `reload_schema_cache` sends `NOTIFY pgrst, 'reload schema'`.

Nothing here runs DDL: where a fix needs DDL, the advice carries the exact statement for a
person to review and apply as a migration.

This package is the public API (`run_checks`, `summary`, `Report`, `Check` and every check
by name); the checks live in one module per question:

- `trigger`: the sign-up trigger on auth.users and the function it calls.
- `simulation`: the simulated sign-up.
- `drift`: each app table against the spec, and the index on its key column.
- `schema_cache`: PostgREST's "not in the schema cache" question, and the reload.
- `signup_values`: what a sign-up copies from the auth user: metadata some sign-ups lack,
  values that collide on a unique column.
- `visibility`: rows the app cannot read (row level security, grants), asked as the app.
- `data`: orphaned and duplicate rows, sign-ups missing rows by week, rows that cannot be provisioned.
- `auth_accounts`: Supabase Auth's own tables: events not written to the database, duplicate
  accounts (one email, several sign-ups).
- `reasons`: what to do about each reason a row cannot be provisioned.
- `findings`: `Check`, the statuses and what the checks share; `audit`: the audit record.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from django.db import DatabaseError, transaction

from provisioning.actors import Actor
from provisioning.diagnostics import simulation, trigger
from provisioning.diagnostics.audit import Action, Outcome
from provisioning.diagnostics.auth_accounts import check_audit_log, check_duplicate_emails
from provisioning.diagnostics.constraints import check_app_table_triggers, check_check_constraints, check_write_order
from provisioning.diagnostics.data import (
    check_cannot_provision,
    check_confirmation_gate,
    check_coverage,
    check_duplicates,
    check_orphans,
    check_value_drift,
    missing_by_week,
)
from provisioning.diagnostics.drift import check_key_index, check_table, key_index_statement, unique_index_statement
from provisioning.diagnostics.findings import (
    AUTH_SCHEMA,
    AUTH_TABLE,
    GENERATED_TRIGGER,
    OK,
    PROBLEM,
    SAMPLE,
    STATUSES,
    WARNING,
    Check,
    error_details,
    worst,
)
from provisioning.diagnostics.models import check_model_columns, model_gaps
from provisioning.diagnostics.schema_cache import (
    BadQuestion,
    check_schema_cache,
    closest_names,
    parse_schema_cache_question,
    reload_schema_cache,
)
from provisioning.diagnostics.signup_values import check_signup_metadata, check_unique_collisions
from provisioning.diagnostics.simulation import SIMULATION_TIMEOUT, simulate_signup
from provisioning.diagnostics.supabase import (
    check_auth_users_functions,
    check_deleting_users,
    check_hidden_failures,
    check_null_strings_in_auth_users,
    check_webhook_deliveries,
)
from provisioning.diagnostics.trigger import (
    SIGNUP_FUNCTION,
    SIGNUP_TRIGGER,
    FunctionInsert,
    app_table_inserts,
    check_function,
    check_trigger,
    signup_triggers,
)
from provisioning.diagnostics.visibility import app_view, check_app_visibility
from provisioning.engine import catalog, selectors
from provisioning.engine.triggergen import quote_ident
from provisioning.spec import SPEC

__all__ = [
    "AUTH_SCHEMA",
    "AUTH_TABLE",
    "GENERATED_TRIGGER",
    "OK",
    "PROBLEM",
    "SAMPLE",
    "SIGNUP_FUNCTION",
    "SIGNUP_TRIGGER",
    "SIMULATION_TIMEOUT",
    "STATUSES",
    "WARNING",
    "Action",
    "BadQuestion",
    "Check",
    "FunctionInsert",
    "Outcome",
    "Report",
    "app_table_inserts",
    "app_view",
    "check_cannot_provision",
    "check_coverage",
    "check_duplicates",
    "check_function",
    "check_key_index",
    "check_model_columns",
    "check_orphans",
    "check_schema_cache",
    "check_table",
    "check_trigger",
    "closest_names",
    "key_index_statement",
    "missing_by_week",
    "model_gaps",
    "parse_schema_cache_question",
    "quote_ident",
    "reload_schema_cache",
    "run_checks",
    "signup_triggers",
    "simulate_signup",
    "summary",
    "unique_index_statement",
    "worst",
]


@dataclass
class Report:
    checks: list[Check]

    @property
    def status(self) -> str:
        return worst(c.status for c in self.checks)

    @property
    def counts(self) -> dict[str, int]:
        return {s: sum(c.status == s for c in self.checks) for s in STATUSES}

    @property
    def attention(self) -> list[dict[str, str]]:
        """Name and status of each check that is not ok."""
        return [{"name": c.name, "status": c.status} for c in self.checks if not c.ok]

    @property
    def headline(self) -> str:
        """One line for the whole report, the same on the health page and the home page:
        `warning — 10 ok, 2 warnings, 0 problems.`"""
        counts = self.counts
        parts = [f"{counts[OK]} ok"] + [f"{counts[s]} {s}{'' if counts[s] == 1 else 's'}" for s in STATUSES if s != OK]
        return f"{self.status} — {', '.join(parts)}."

    def as_dict(self) -> dict:
        return {
            "status": self.status,
            "headline": self.headline,
            "counts": self.counts,
            "checks": [c.as_dict() for c in self.checks],
        }


#: (the check's name, should it fail to run; the check)
_Step = tuple[str, Callable[[], Check | None]]


def _catalog_checks() -> list[_Step]:
    auth_id = catalog.column_type(AUTH_SCHEMA, AUTH_TABLE, "id")
    steps: list[_Step] = [("Sign-up trigger", check_trigger), ("Sign-up function", check_function)]
    steps += [(f"Table {s.qualified_name}", lambda s=s: check_table(s, auth_id)) for s in SPEC]
    steps += [(f"Index on {s.qualified_name}.{s.key}", lambda s=s: check_key_index(s)) for s in SPEC]
    steps += [("Triggers on app tables", check_app_table_triggers)]
    steps += [("Deleting users", check_deleting_users), ("Errors hidden by the sign-up function", _hidden_failures)]
    steps += [("Functions triggered by auth.users", check_auth_users_functions)]
    steps += [("Models against the live tables", check_model_columns)]
    return steps


def _hidden_failures() -> Check:
    schema, name = trigger._signup_function()
    return check_hidden_failures(catalog.function(schema, name), f"{schema}.{name}()")


def _data_checks() -> list[_Step]:
    # Who cannot be provisioned, and why, is a pass over every live user per table: three
    # checks read it, and one report works it out once (lazily, inside the first check's
    # savepoint; a failure is not kept, so the next check asks again).
    blocked = functools.cache(lambda: selectors.current_blocked_summary(sample=SAMPLE))
    return [
        ("Orphaned app rows", check_orphans),
        ("Values that differ from auth", check_value_drift),
        ("Duplicate app rows", check_duplicates),
        ("Sign-ups missing rows", lambda: check_coverage(blocked=blocked)),
        ("Provisioning on confirmation", check_confirmation_gate),
        ("Users that cannot be provisioned", lambda: check_cannot_provision(blocked=blocked)),
        ("Foreign keys between app tables", lambda: check_write_order(blocked=blocked)),
        ("CHECK constraints", check_check_constraints),
        ("Rows written into auth.users by hand", check_null_strings_in_auth_users),
        ("Webhook deliveries (pg_net)", check_webhook_deliveries),
        ("Sign-up metadata by provider", check_signup_metadata),
        ("Unique values the sign-up copies", check_unique_collisions),
        ("Rows the app can read (RLS and grants)", check_app_visibility),
        ("Auth events written to the database", check_audit_log),
        ("Accounts sharing an email", check_duplicate_emails),
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
                result = Check(name, PROBLEM, f"The check could not run: {error_details(exc)['message']}.")
        if result is not None:
            results.append(result)
    return results


def run_checks(simulate_signup: bool = False, *, actor: Actor | None = None, raise_errors: bool = False) -> Report:
    """Every check. With `simulate_signup`, also the simulated sign-up (needs `actor`, who
    must hold the provision permission; see `simulate_signup`). A check that hits a
    database error becomes a problem naming the error, unless `raise_errors`."""
    if simulate_signup and actor is None:
        raise ValueError("a simulated sign-up needs an actor")
    with selectors.shared_reads():  # checks that read the same population read it once
        checks = _run(_catalog_checks() + _data_checks(), raise_errors=raise_errors)
    if simulate_signup:
        # `simulate_signup` is the argument here, so the check is reached through its module.
        checks.insert(2, simulation.simulate_signup(actor=actor))
    return Report(checks)


def summary() -> Report:
    """Every check but the simulated sign-up: what the health page shows, for the home
    page's panel (which caches it), so both say the same."""
    return run_checks()
