"""Provisioned, yet invisible to the app: row level security and grants on the app tables,
for the roles Supabase's API uses (`authenticated`, `anon`). Read-only.

"Would the app see this row?" is answered by asking the database as the app does: inside
a savepoint that is always rolled back, `SET LOCAL ROLE authenticated` and the request's JWT
claims (`request.jwt.claims`, which `auth.uid()` reads), then one SELECT. Nothing is written.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

from django.db import DatabaseError, connection
from psycopg import sql

from provisioning.diagnostics.advisor import LINTS, advisor_lints, owner_policy_statement
from provisioning.diagnostics.findings import (
    OK,
    PROBLEM,
    WARNING,
    Check,
    error_details,
    has_key_column,
    read_rolled_back,
    worst,
)
from provisioning.engine import catalog, statements
from provisioning.spec import SPEC, TableSpec

#: The roles Supabase's Data API reads as: a signed-in user, and a visitor with the anon key.
AUTHENTICATED, ANON = "authenticated", "anon"
APP_ROLES = (AUTHENTICATED, ANON)
#: How many users' own rows the check reads as those users.
OWNERS_SAMPLED = 20
#: ... and where the key has no index, where each read as the app scans the table.
OWNERS_SAMPLED_UNINDEXED = 3
#: A read as the app may run a policy's functions: bounded.
READ_TIMEOUT = "5s"


@dataclass(frozen=True)
class Policy:
    name: str
    permissive: bool
    roles: tuple[str, ...]
    command: str  # SELECT, INSERT, UPDATE, DELETE or ALL
    using: str

    def reads_as(self, role: str) -> bool:
        return self.command in ("SELECT", "ALL") and (role in self.roles or "public" in self.roles)


def _roles_present() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT rolname FROM pg_roles WHERE rolname = ANY(%s)", [list(APP_ROLES)])
        present = {row[0] for row in cursor.fetchall()}
    return [r for r in APP_ROLES if r in present]


def _table_security(spec: TableSpec) -> tuple[bool, list[Policy]]:
    """(row level security enabled, the table's policies)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relrowsecurity FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relname = %s",
            [spec.schema, spec.name],
        )
        (enabled,) = cursor.fetchone()
        cursor.execute(
            "SELECT policyname, permissive = 'PERMISSIVE', roles::text[], cmd, coalesce(qual, '') FROM pg_policies "
            "WHERE schemaname = %s AND tablename = %s ORDER BY policyname",
            [spec.schema, spec.name],
        )
        return enabled, [Policy(n, p, tuple(r), c, q) for n, p, r, c, q in cursor.fetchall()]


def _may_select(role: str, spec: TableSpec) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT has_table_privilege(%s, to_regclass(format('%%I.%%I', %s::text, %s::text)), 'SELECT')",
            [role, spec.schema, spec.name],
        )
        return cursor.fetchone()[0]


def claims_for(role: str, user_id: uuid.UUID | None = None, email: str | None = None) -> dict:
    """The JWT claims Supabase sends with a request: a signed-in user's, or the anon key's."""
    if role == ANON:
        return {"role": ANON}
    return {"sub": str(user_id), "role": role, "aud": "authenticated", "email": email or ""}


def read_as(role: str, claims: dict, query: sql.Composable, params: list) -> list[tuple]:
    """Run one read as the app would (`role`, JWT `claims`) and roll it back, whatever it
    did. Raises DatabaseError when the database refuses it (no grant, not allowed to act
    as `role`)."""
    return read_rolled_back(
        query,
        params,
        timeout=READ_TIMEOUT,
        setup=[
            (
                "SELECT set_config('request.jwt.claims', %s, true), set_config('request.jwt.claim.sub', %s, true), "
                "set_config('request.jwt.claim.role', %s, true)",
                [json.dumps(claims), claims.get("sub", ""), claims.get("role", "")],
            ),
            (sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)), None),
        ],
    )


def _row_query(spec: TableSpec) -> sql.Composable:
    return sql.SQL("SELECT EXISTS (SELECT 1 FROM {t} x WHERE x.{k} = %s)").format(
        t=spec.identifier(), k=sql.Identifier(spec.key)
    )


def _sees(role: str, claims: dict, spec: TableSpec, user_id: uuid.UUID) -> tuple[bool | None, str]:
    """(can `role` with `claims` read the user's row, why not); None when it could not be asked."""
    try:
        (visible,) = read_as(role, claims, _row_query(spec), [user_id])[0]
    except DatabaseError as exc:
        details = error_details(exc)
        if details["sqlstate"] == "42501" and "permission denied for table" in details["message"]:
            return False, f"no SELECT grant for {role}"
        return None, details["message"]
    return visible, ""


def _others_see(spec: TableSpec, user_ids: list[uuid.UUID]) -> int:
    """How many of these users' rows another signed-in user can read: one read as the app."""
    query = sql.SQL("SELECT count(DISTINCT x.{k}) FROM {t} x WHERE x.{k} = ANY(%s)").format(
        t=spec.identifier(), k=sql.Identifier(spec.key)
    )
    ((n,),) = read_as(AUTHENTICATED, claims_for(AUTHENTICATED, uuid.uuid4()), query, [user_ids])
    return n


def _hidden_reason(
    role: str, spec: TableSpec, rls: bool, policies: list[Policy], *, may_select: bool | None = None
) -> str:
    if not (may_select if may_select is not None else _may_select(role, spec)):
        return f"no SELECT grant for {role}"
    if not rls:
        return ""
    readers = [p for p in policies if p.permissive and p.reads_as(role)]
    if not readers:
        return f"row level security is on and no policy lets {role} read"
    return "the policies' conditions leave it out: " + "; ".join(f"{p.name} USING ({p.using})" for p in readers)


def app_view(user_id: uuid.UUID, email: str | None) -> dict:
    """Would the app see this user's rows? Per spec table: does the row exist, and can the
    user (signed in), another signed-in user and a visitor with the anon key read it."""
    roles = _roles_present()
    if AUTHENTICATED not in roles:
        return {"available": False, "why": "this database has no `authenticated` role (not a Supabase database)"}
    someone_else = claims_for(AUTHENTICATED, uuid.uuid4())
    tables = []
    for spec in SPEC:
        if not has_key_column(spec):
            continue
        with connection.cursor() as cursor:
            cursor.execute(_row_query(spec), [user_id])
            (exists,) = cursor.fetchone()
        row = {"table": spec.qualified_name, "label": spec.label, "exists": exists}
        if exists:
            rls, policies = _table_security(spec)
            row["owner"], error = _sees(AUTHENTICATED, claims_for(AUTHENTICATED, user_id, email), spec, user_id)
            row["others"], _ = _sees(AUTHENTICATED, someone_else, spec, user_id)
            row["anon"], _ = _sees(ANON, claims_for(ANON), spec, user_id) if ANON in roles else (None, "")
            row["why"] = error or (_hidden_reason(AUTHENTICATED, spec, rls, policies) if row["owner"] is False else "")
        tables.append(row)
    return {"available": True, "tables": tables}


def _sampled_owners(spec: TableSpec) -> list[tuple[uuid.UUID, str | None]]:
    query = sql.SQL(
        "SELECT u.id, u.email FROM {auth} u WHERE {population} AND EXISTS (SELECT 1 FROM {t} x WHERE x.{k} = u.id) "
        "LIMIT {n}"
    ).format(
        auth=statements.AUTH_USERS,
        population=statements.POPULATION,
        t=spec.identifier(),
        k=sql.Identifier(spec.key),
        n=sql.Literal(
            OWNERS_SAMPLED if catalog.key_indexed([(spec.schema, spec.name, spec.key)]) else OWNERS_SAMPLED_UNINDEXED
        ),
    )
    with connection.cursor() as cursor:
        cursor.execute(query)
        return cursor.fetchall()


def _dashboard_reads_through_rls() -> tuple[str, list[str]]:
    """(the dashboard's role, the spec tables whose row level security applies to it): a role
    that is neither superuser, nor BYPASSRLS, nor (without FORCE) the tables' owner sees only
    the rows a policy gives it, so every count and every write of provisioning goes wrong."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_user, coalesce(array_agg(n.nspname || '.' || c.relname ORDER BY x.o) FILTER ("
            "  WHERE c.relrowsecurity AND (c.relforcerowsecurity OR NOT pg_has_role(current_user, c.relowner, 'USAGE'))"
            "  AND NOT (SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user)), '{}') "
            "FROM unnest(%s::text[], %s::text[]) WITH ORDINALITY AS x(s, t, o) "
            "JOIN pg_namespace n ON n.nspname = x.s JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = x.t",
            [[s.schema for s in SPEC], [s.name for s in SPEC]],
        )
        role, tables = cursor.fetchone()
    return role, list(tables)


def check_app_visibility() -> Check:
    """Rows provisioning writes that the app, reading as `authenticated`, would not see."""
    name = "Rows the app can read (RLS and grants)"
    roles = _roles_present()
    if AUTHENTICATED not in roles:
        return Check(name, OK, "No `authenticated` role on this database (not a Supabase database): not checked.")
    findings, advice, statements_needed, rows = [], [], [], []
    dashboard, limited = _dashboard_reads_through_rls()
    if limited:
        findings.append(
            f"The dashboard's own role {dashboard} reads {', '.join(limited)} through row level security: it sees "
            "only the rows a policy gives it, so it counts provisioned users as missing, and its inserts are refused "
            "(`new row violates row-level security policy`)."
        )
        statements_needed.append(
            sql.SQL("ALTER ROLE {} BYPASSRLS;").format(sql.Identifier(dashboard)).as_string(connection.connection)
        )
    for spec in SPEC:
        if not has_key_column(spec):
            continue
        rls, policies = _table_security(spec)
        owners = _sampled_owners(spec)
        hidden, refused = [], ""
        for user_id, email in owners:
            visible, error = _sees(AUTHENTICATED, claims_for(AUTHENTICATED, user_id, email), spec, user_id)
            if error and visible is None:
                refused = error
                break
            if not visible:
                hidden.append(user_id)
        grants = {role: _may_select(role, spec) for role in roles}
        others = 0 if refused or not grants[AUTHENTICATED] else _others_see(spec, [u for u, _ in owners])
        rows.append(
            {
                "table": spec.qualified_name,
                "row level security": "on" if rls else "off",
                **{f"{role} may SELECT": grants[role] for role in roles},
                "policies for reading": ", ".join(p.name for p in policies if p.reads_as(AUTHENTICATED)) or "-",
                "users sampled": len(owners),
                "see their own row": len(owners) - len(hidden) if not refused else "-",
                "another signed-in user sees": others if not refused else "-",
            }
        )
        if refused:
            findings.append(f"{spec.qualified_name}: could not read as {AUTHENTICATED} ({refused}).")
            if "permission denied to set role" in refused:
                advice.append(
                    f"Let the dashboard's role act as the app to check: `GRANT {AUTHENTICATED} TO <its role>;`."
                )
            continue
        reason = _hidden_reason(AUTHENTICATED, spec, rls, policies, may_select=grants[AUTHENTICATED])
        if not grants[AUTHENTICATED]:
            findings.append(
                f"{AUTHENTICATED} has no SELECT grant on {spec.qualified_name}: the app reads none of its rows "
                f"(`permission denied for table {spec.name}`, 42501)."
            )
            statements_needed.append(
                sql.SQL("GRANT SELECT ON {} TO authenticated;")
                .format(spec.identifier())
                .as_string(connection.connection)
            )
        elif hidden:
            findings.append(
                f"{len(hidden)} of {len(owners)} sampled users cannot read their own {spec.label} in "
                f"{spec.qualified_name}: {reason}. Provisioned rows the app does not show look like missing rows "
                'to users ("I don\'t appear in searches").'
            )
            statements_needed.append(owner_policy_statement(spec))
    if statements_needed:
        advice.insert(
            0,
            "Give the app's role what it needs to read its users' rows, or change the spec's value where a policy "
            "reads a column the dashboard leaves at its default (say `is_public`). Review, then apply as a migration:",
        )
    lints = advisor_lints()
    flagged: dict[str, list[str]] = {}
    for lint in lints:
        flagged.setdefault(lint.object, []).append(f"{lint.name} ({lint.level})")
    for row in rows:
        row["Security Advisor"] = ", ".join(dict.fromkeys(flagged.get(row["table"], []))) or "-"
    if lints:
        advice.insert(
            0,
            "Supabase's Security Advisor (Studio -> Advisors) flags the same: "
            + " ".join(dict.fromkeys(f"{lint.name}: {lint.advice}" for lint in lints))
            + " Review the SQL below, then apply it as a migration.",
        )
    details = {
        "rows": rows,
        "statements": list(dict.fromkeys([s for lint in lints for s in lint.statements] + statements_needed)),
        "lints": [lint.as_row() for lint in lints],
    }
    if not findings and not lints:
        return Check(
            name,
            OK,
            f"Each sampled user can read their own rows as the app does ({AUTHENTICATED}, with their JWT claims). "
            f"None of Supabase's Security Advisor lints {', '.join(LINTS)} fires on these tables or auth.users.",
            "",
            details,
        )
    status = worst([lint.status for lint in lints] + ([WARNING] if findings else []) + ([PROBLEM] if limited else []))
    return Check(name, status, " ".join([lint.text for lint in lints] + findings), " ".join(advice), details)
