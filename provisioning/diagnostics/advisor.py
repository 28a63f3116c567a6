"""Supabase's Security Advisor on what provisioning touches: the lints of `supabase/splinter`
(the SQL behind Studio's Security and Performance Advisors), scoped to the tables the spec
writes and `auth.users`. Read-only.

Each finding keeps the lint's name and level as splinter defines them (ERROR reads as a
problem here, WARN as a warning) and carries the statement to review:

- `rls_disabled_in_public` (ERROR): a spec table in a schema the API serves, with a grant to
  `anon` or `authenticated` and row level security off: the anon key, public in every app,
  reads every row. Fix: enable RLS, with the owner policy where none lets a user read.
- `policy_exists_rls_disabled` (ERROR): policies on a spec table whose RLS is off, so none
  applies. Fix: enable RLS.
- `auth_users_exposed` (ERROR): a view or materialized view in a served schema reading
  `auth.users`, selectable by the API roles, that does not go through RLS on `auth.users`.
  Fix: revoke it from the API roles (the app reads its own tables, which the sign-up fills).
- `security_definer_view` (ERROR): a view over a spec table or `auth.users`, selectable by
  the API roles, that runs as its owner and so skips the tables' RLS. Fix: `security_invoker`.
- `auth_rls_initplan` (WARN): a policy on a spec table calling `auth.uid()` (`jwt`, `role`,
  `email`) bare, evaluated for every row (slow at a million users). Fix: `(SELECT auth.uid())`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.db import connection
from psycopg import sql

from provisioning.diagnostics.findings import AUTH_SCHEMA, AUTH_TABLE, PROBLEM, WARNING, read_rolled_back
from provisioning.diagnostics.schema_cache import exposed_schemas
from provisioning.spec import SPEC, TableSpec

ERROR, WARN = "ERROR", "WARN"
#: The lints, in the order they are reported (splinter's numbers in brackets).
LINTS = (
    "rls_disabled_in_public",  # 0013
    "policy_exists_rls_disabled",  # 0007
    "auth_users_exposed",  # 0002
    "security_definer_view",  # 0010
    "auth_rls_initplan",  # 0003
)
#: Schemas splinter never lints: Supabase's own and extensions'.
SYSTEM_SCHEMAS = frozenset(
    [
        "_timescaledb_cache",
        "_timescaledb_catalog",
        "_timescaledb_config",
        "_timescaledb_internal",
        "auth",
        "cron",
        "extensions",
        "graphql",
        "graphql_public",
        "information_schema",
        "net",
        "pgroonga",
        "pgsodium",
        "pgsodium_masks",
        "pgtle",
        "pgbouncer",
        "pg_catalog",
        "realtime",
        "repack",
        "storage",
        "supabase_functions",
        "supabase_migrations",
        "tiger",
        "topology",
        "vault",
    ]
)
API_ROLES = ("anon", "authenticated")
#: The `auth` helpers a policy calls; bare, each is evaluated per row (auth_rls_initplan).
_AUTH_HELPERS = ("uid", "jwt", "role", "email")
_BARE_HELPER = re.compile(r"(?<!select )\bauth\.(uid|jwt|role|email)\(\)", re.IGNORECASE)
_INVOKER = ("security_invoker=1", "security_invoker=true", "security_invoker=yes", "security_invoker=on")


@dataclass(frozen=True)
class Lint:
    name: str  # splinter's name
    level: str  # ERROR or WARN, as splinter has it
    object: str  # the table or view, schema-qualified
    found: str
    advice: str
    statements: tuple[str, ...]

    @property
    def status(self) -> str:
        return PROBLEM if self.level == ERROR else WARNING

    @property
    def text(self) -> str:
        return f"{self.name} ({self.level}): {self.found}"

    def as_row(self) -> dict:
        return {"lint": self.name, "level": self.level, "object": self.object, "found": self.found}


def _sql(composed: sql.Composable) -> str:
    return composed.as_string(connection.connection)


def _roles() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT rolname FROM pg_roles WHERE rolname = ANY(%s)", [list(API_ROLES)])
        present = {row[0] for row in cursor.fetchall()}
    return [r for r in API_ROLES if r in present]


def owner_policy_statement(spec: TableSpec) -> str:
    """A policy that lets each signed-in user read their own row (Supabase's own example,
    with `auth.uid()` evaluated once per query)."""
    return _sql(
        sql.SQL("CREATE POLICY {name} ON {t} FOR SELECT TO authenticated USING ((SELECT auth.uid()) = {k});").format(
            name=sql.Identifier(f"Users read their own {spec.label}"),
            t=spec.identifier(),
            k=sql.Identifier(spec.key),
        )
    )


@dataclass(frozen=True)
class _Table:
    spec: TableSpec
    rls: bool
    policies: tuple[str, ...]
    authenticated_reads: bool  # a permissive policy lets `authenticated` SELECT
    privileges: dict[str, tuple[str, ...]]  # per API role: SELECT, INSERT, UPDATE, DELETE held


def _tables(roles: list[str]) -> list[_Table]:
    found = []
    with connection.cursor() as cursor:
        for spec in SPEC:
            cursor.execute(
                "SELECT c.oid, c.relrowsecurity FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = %s AND c.relname = %s AND c.relkind IN ('r', 'p')",
                [spec.schema, spec.name],
            )
            row = cursor.fetchone()
            if row is None:
                continue  # the table checks say so
            oid, rls = row
            cursor.execute(
                "SELECT policyname, permissive = 'PERMISSIVE' AND cmd IN ('SELECT', 'ALL') "
                "AND roles && ARRAY['authenticated', 'public']::name[] FROM pg_policies "
                "WHERE schemaname = %s AND tablename = %s ORDER BY policyname",
                [spec.schema, spec.name],
            )
            policies = cursor.fetchall()
            privileges = {}
            for role in roles:
                cursor.execute(
                    "SELECT array_agg(p ORDER BY o) FILTER (WHERE has_table_privilege(%s, %s::oid, p)) "
                    "FROM unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE']) WITH ORDINALITY AS x(p, o)",
                    [role, oid],
                )
                privileges[role] = tuple(cursor.fetchone()[0] or ())
            found.append(_Table(spec, rls, tuple(p for p, _ in policies), any(r for _, r in policies), privileges))
    return found


def _who_reads(privileges: dict[str, tuple[str, ...]]) -> str:
    """Who reads every row of a table with RLS off, and what else they may do to its rows."""
    if "SELECT" in privileges.get("anon", ()):
        role, who, why = "anon", "anyone with the anon key", " (the anon key ships in every app's front end)"
    else:
        role, who, why = "authenticated", "any signed-in user", ""
    writes = [p.lower() for p in privileges.get(role, ()) if p != "SELECT"]
    return f"{who} can read every row" + (f" (and {', '.join(writes)} rows)" if writes else "") + why


def _rls_lints(tables: list[_Table], exposed: list[str]) -> list[Lint]:
    lints = []
    for table in tables:
        spec = table.spec
        if table.rls or spec.schema in SYSTEM_SCHEMAS:
            continue
        enable = _sql(sql.SQL("ALTER TABLE {} ENABLE ROW LEVEL SECURITY;").format(spec.identifier()))
        readable = any("SELECT" in p for p in table.privileges.values())
        if readable and spec.schema in exposed:
            lints.append(
                Lint(
                    "rls_disabled_in_public",
                    ERROR,
                    spec.qualified_name,
                    f"{spec.qualified_name} is in a schema the API serves and row level security is off: "
                    f"{_who_reads(table.privileges)}.",
                    "Enable row level security; the owner policy keeps each signed-in user reading their own rows "
                    "(the sign-up trigger and the dashboard are not limited by it).",
                    (enable,) if table.authenticated_reads else (enable, owner_policy_statement(spec)),
                )
            )
        if table.policies:
            names = ", ".join(f'"{p}"' for p in table.policies)
            lints.append(
                Lint(
                    "policy_exists_rls_disabled",
                    ERROR,
                    spec.qualified_name,
                    f"{spec.qualified_name} has policies ({names}) but row level security is off, so none of them "
                    "applies.",
                    "Enable row level security so that the policies apply.",
                    (enable,),
                )
            )
    return lints


def _invoker(options: list[str] | None) -> bool:
    return any(o.lower() in _INVOKER for o in options or ())


def _view_lints(watched: list[str], roles: list[str], exposed: list[str]) -> list[Lint]:
    selectable = sql.SQL(", ").join(
        sql.SQL("CASE WHEN has_table_privilege({r}, c.oid, 'SELECT') THEN {r} END").format(r=sql.Literal(role))
        for role in roles
    )
    query = sql.SQL(
        "SELECT n.nspname, c.relname, c.relkind, c.reloptions::text[], "
        "array_agg(DISTINCT dn.nspname || '.' || dc.relname), array_remove(ARRAY[{selectable}]::text[], NULL), "
        "(SELECT a.relrowsecurity FROM pg_class a WHERE a.oid = to_regclass('auth.users')) "
        "FROM pg_depend d "
        "JOIN pg_rewrite r ON r.oid = d.objid "
        "JOIN pg_class c ON c.oid = r.ev_class "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "JOIN pg_class dc ON dc.oid = d.refobjid "
        "JOIN pg_namespace dn ON dn.oid = dc.relnamespace "
        "LEFT JOIN pg_depend ext ON ext.objid = c.oid AND ext.deptype = 'e' "
        "WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass AND d.deptype = 'n' "
        "AND c.oid <> d.refobjid AND c.relkind IN ('v', 'm') AND ext.objid IS NULL "
        "AND d.refobjid = ANY(ARRAY(SELECT to_regclass(x) FROM unnest(%s::text[]) AS x)) "
        "GROUP BY n.nspname, c.relname, c.relkind, c.reloptions, c.oid ORDER BY n.nspname, c.relname"
    ).format(selectable=selectable)
    with connection.cursor() as cursor:
        cursor.execute(query, [[_quoted(name) for name in watched]])
        views = cursor.fetchall()
    auth_users = f"{AUTH_SCHEMA}.{AUTH_TABLE}"
    lints = []
    for schema, name, kind, options, over, readers, auth_rls in views:
        if not readers:
            continue
        view = f"{schema}.{name}"
        identifier = sql.Identifier(schema, name)
        invoker = kind == "v" and _invoker(options)
        who = " and ".join(readers)
        if auth_users in over and schema in exposed and (kind == "m" or not invoker or not auth_rls):
            what = "materialized view" if kind == "m" else "view"
            lints.append(
                Lint(
                    "auth_users_exposed",
                    ERROR,
                    view,
                    f"the {what} {view} reads auth.users and {who} may SELECT it through the API"
                    + (
                        " (a materialized view has no row level security)."
                        if kind == "m"
                        else "; it does not go through row level security on auth.users."
                    ),
                    "Take it away from the API roles: the app reads its users from its own tables, which the sign-up "
                    "trigger fills (or recreate it WITH (security_invoker = on) and give auth.users RLS and a policy).",
                    (
                        _sql(
                            sql.SQL("REVOKE SELECT ON {} FROM {};").format(
                                identifier, sql.SQL(", ").join(map(sql.Identifier, readers))
                            )
                        ),
                    ),
                )
            )
        if kind == "v" and not invoker and schema not in SYSTEM_SCHEMAS:
            lints.append(
                Lint(
                    "security_definer_view",
                    ERROR,
                    view,
                    f"the view {view} over {', '.join(sorted(over))} runs as its owner (SECURITY DEFINER, "
                    f"PostgreSQL's default), so reading it skips row level security on them, and {who} may SELECT it.",
                    "Make the view run as the user who reads it, so that the tables' policies apply.",
                    (_sql(sql.SQL("ALTER VIEW {} SET (security_invoker = on);").format(identifier)),),
                )
            )
    return lints


def _quoted(qualified: str) -> str:
    schema, name = qualified.split(".", 1)
    return _sql(sql.Identifier(schema, name))


def _initplan_lints(tables: list[_Table]) -> list[Lint]:
    lints = []
    for table in tables:
        spec = table.spec
        if not table.rls or spec.schema in SYSTEM_SCHEMAS:
            continue
        # As splinter reads them: with an empty search_path, every auth helper is qualified.
        policies = read_rolled_back(
            sql.SQL(
                "SELECT policyname, qual, with_check FROM pg_catalog.pg_policies "
                "WHERE schemaname = %s AND tablename = %s ORDER BY policyname"
            ),
            [spec.schema, spec.name],
            timeout="5s",
            setup=[("SET LOCAL search_path = ''", None)],
        )
        for name, qual, with_check in policies:
            bare = sorted({f"auth.{h}()" for h in _AUTH_HELPERS for e in (qual, with_check) if _calls_bare(e or "", h)})
            if not bare:
                continue
            parts = [sql.SQL("ALTER POLICY {} ON {}").format(sql.Identifier(name), spec.identifier())]
            # The expressions come from the catalog (pg_get_expr): SQL already, kept as written
            # but for the wrapped calls.
            if qual:
                parts.append(sql.SQL("USING ({})").format(sql.SQL(_wrapped(qual))))
            if with_check:
                parts.append(sql.SQL("WITH CHECK ({})").format(sql.SQL(_wrapped(with_check))))
            lints.append(
                Lint(
                    "auth_rls_initplan",
                    WARN,
                    spec.qualified_name,
                    f'policy "{name}" on {spec.qualified_name} calls {", ".join(bare)} for each row it reads: '
                    "slow at scale (a list of a million users evaluates it a million times).",
                    "Wrap each call in a SELECT, evaluated once per query; what the policy allows does not change.",
                    (_sql(sql.SQL(" ").join(parts)) + ";",),
                )
            )
    return lints


def _calls_bare(expression: str, helper: str) -> bool:
    """splinter's test: the expression calls auth.<helper>() and never as `select auth.<helper>()`."""
    return f"auth.{helper}()" in expression and f"select auth.{helper}()" not in expression.lower()


def _wrapped(expression: str) -> str:
    return _BARE_HELPER.sub(lambda m: f"(SELECT auth.{m.group(1).lower()}())", expression)


def advisor_lints() -> list[Lint]:
    """The lints above that fire on this database, in LINTS order; none where the API roles
    do not exist (not a Supabase database)."""
    roles = _roles()
    if not roles:
        return []
    exposed, _ = exposed_schemas()
    tables = _tables(roles)
    lints = _rls_lints(tables, exposed) + _view_lints(
        [f"{AUTH_SCHEMA}.{AUTH_TABLE}"] + [t.spec.qualified_name for t in tables], roles, exposed
    )
    lints += _initplan_lints(tables)
    return sorted(lints, key=lambda lint: LINTS.index(lint.name))
