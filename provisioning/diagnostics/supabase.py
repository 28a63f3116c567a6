"""What Supabase users hit beyond the sign-up trigger itself, each with the error they see,
the cause and the fix as SQL to review (never run by the dashboard). Read-only."""

from __future__ import annotations

import re

from django.db import connection
from psycopg import sql

from provisioning.diagnostics.findings import AUTH_SCHEMA, AUTH_TABLE, OK, PROBLEM, WARNING, Check
from provisioning.engine import catalog
from provisioning.spec.vocabulary import AUTH_TOKEN_COLUMNS

#: Delete rules that let Supabase delete an auth user: cascade, set null, set default.
DELETES_FOLLOW = {"c", "n", "d"}
RULES = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}
#: Columns Supabase Auth reads as strings: NULL there breaks it.
STRING_COLUMNS = (*AUTH_TOKEN_COLUMNS, "email_change", "phone_change")


def check_deleting_users() -> Check:
    """Foreign keys to auth.users that make "delete user" in Supabase fail."""
    name = "Deleting users"
    blocking = [
        (schema, table, fk)
        for schema, table, fk in catalog.foreign_keys_to(AUTH_SCHEMA, AUTH_TABLE)
        if fk.on_delete not in DELETES_FOLLOW
    ]
    if not blocking:
        return Check(name, OK, "No foreign key stops Supabase from deleting an auth user.", "", {})
    statements = [
        sql.SQL(
            "ALTER TABLE {table} DROP CONSTRAINT {name}, ADD CONSTRAINT {name} "
            "FOREIGN KEY ({columns}) REFERENCES auth.users ({refs}) ON DELETE CASCADE;"
        )
        .format(
            table=sql.Identifier(schema, table),
            name=sql.Identifier(fk.name),
            columns=sql.SQL(", ").join(map(sql.Identifier, fk.columns)),
            refs=sql.SQL(", ").join(map(sql.Identifier, fk.ref_columns)),
        )
        .as_string(connection.connection)
        for schema, table, fk in blocking
    ]
    listed = "; ".join(
        f"{schema}.{table}.{', '.join(fk.columns)} ({fk.name}, ON DELETE {RULES.get(fk.on_delete, fk.on_delete)})"
        for schema, table, fk in blocking
    )
    return Check(
        name,
        PROBLEM,
        f"Foreign keys to auth.users without ON DELETE CASCADE or SET NULL: {listed}. Deleting such a user in "
        'Supabase fails with `23503 ... violates foreign key constraint` (the dashboard says "Database error '
        'deleting user").',
        "Let the app rows follow the user (CASCADE), or keep them without it (SET NULL on a nullable column). "
        "Review, then apply as a migration:",
        {"statements": statements},
    )


def check_null_strings_in_auth_users() -> Check:
    """Rows written into auth.users by hand with NULL where Supabase Auth expects ''."""
    name = "Rows written into auth.users by hand"
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT bool_and(has_column_privilege('auth.users', c, 'SELECT')) FROM unnest(%s::text[]) c",
            [list(STRING_COLUMNS)],
        )
        (readable,) = cursor.fetchone()
        if not readable:
            return Check(
                name,
                OK,
                "Not checked: the dashboard's role may not read auth.users' token columns (as the README's grants "
                "intend). Run the doctor as a role that can, to check.",
                "",
                {},
            )
        any_null = sql.SQL(" OR ").join(sql.SQL("{} IS NULL").format(sql.Identifier(c)) for c in STRING_COLUMNS)
        cursor.execute(sql.SQL("SELECT count(*) FROM auth.users WHERE {}").format(any_null))
        (rows,) = cursor.fetchone()
    if not rows:
        return Check(name, OK, "No auth user has NULL where Supabase Auth expects a string.", "", {})
    fix = sql.SQL("UPDATE auth.users SET {} WHERE {};").format(
        sql.SQL(", ").join(sql.SQL("{0} = coalesce({0}, '')").format(sql.Identifier(c)) for c in STRING_COLUMNS),
        any_null,
    )
    return Check(
        name,
        PROBLEM,
        f"{rows} auth user(s) have NULL in a token or change column (rows written into auth.users by hand or by "
        "a script): signing them in fails with `Database error querying schema ... converting NULL to string is "
        "unsupported`.",
        "Set those columns to '' (the dashboard never writes to auth; review, then run as the postgres role):",
        {"statements": [fix.as_string(connection.connection)], "rows": [{"auth users": rows}]},
    )


#: A PL/pgSQL exception block that swallows errors.
_CATCH_ALL = re.compile(r"\bEXCEPTION\s+WHEN\b", re.IGNORECASE)


def check_hidden_failures(function: catalog.Function | None, qualified: str) -> Check:
    """A sign-up function that catches exceptions: failures leave users without rows."""
    name = "Errors hidden by the sign-up function"
    if function is None or not _CATCH_ALL.search(function.definition):
        return Check(name, OK, f"{qualified} does not catch exceptions: a failure is seen, not hidden.", "", {})
    return Check(
        name,
        WARNING,
        f"{qualified} catches exceptions (`EXCEPTION WHEN ...`): when an insert fails, the sign-up still succeeds "
        "and the user is left without rows, with no error anywhere.",
        "Let errors surface (remove the handler), or log them; the check “Sign-ups missing rows” shows the "
        "evidence, week by week.",
        {"definition": function.definition},
    )


def check_auth_users_functions() -> Check:
    """Every function a trigger on auth.users calls (INSERT: each sign-up; UPDATE: each
    sign-in, which updates last_sign_in_at): can it write what it writes, as the auth
    service's role, whoever calls it?"""
    from provisioning.diagnostics.trigger import inserted_tables

    name = "Functions triggered by auth.users"
    findings: list[tuple[str, str]] = []
    statements: list[str] = []
    listed = []
    for trig in catalog.triggers(AUTH_SCHEMA, AUTH_TABLE):
        events = "/".join(e for e, on in (("INSERT", trig.on_insert), ("UPDATE", trig.on_update)) if on) or "other"
        listed.append(f"{trig.name} (on {events}) -> {trig.function}()")
        function = catalog.function(trig.function_schema, trig.function_name)
        if function is None:
            continue
        qualified = f"{function.schema}.{function.name}()"
        when = "every sign-in (Supabase updates last_sign_in_at) fails" if trig.on_update else "every sign-up fails"
        writes = inserted_tables(function.definition)
        app_writes = [(schema or "public", table) for schema, table, _ in writes if schema in (None, "public")]
        if app_writes and not function.security_definer:
            table = app_writes[0][1]
            findings.append(
                (
                    PROBLEM,
                    f"{qualified} (trigger {trig.name}, on {events}) is not SECURITY DEFINER: it runs as the auth "
                    f"service's role, which has no rights in public, so {when} with `permission denied for table "
                    f'{table} (SQLSTATE 42501)` ("Database error saving new user").',
                )
            )
            statements.append(f"ALTER FUNCTION {qualified} SECURITY DEFINER SET search_path = '';")
        if function.security_definer:
            for schema, table in dict.fromkeys(app_writes):
                if not _may_insert(function.owner, schema, table):
                    findings.append(
                        (
                            PROBLEM,
                            f"{qualified} runs as its owner {function.owner}, who may not INSERT into "
                            f"{schema}.{table}: {when} with `permission denied for table {table} (SQLSTATE 42501)`.",
                        )
                    )
                    statements.append(f'GRANT INSERT ON {schema}.{table} TO "{function.owner}";')
            if not any(item.startswith("search_path=") for item in function.config):
                findings.append(
                    (
                        WARNING,
                        f"{qualified} is SECURITY DEFINER without SET search_path: the tables it finds depend on "
                        "the caller's search_path (Supabase's template sets search_path = '').",
                    )
                )
        unqualified = sorted({table for schema, table, _ in writes if schema is None})
        if unqualified:
            empty_path = any(item in ('search_path=""', "search_path=''") for item in function.config)
            findings.append(
                (
                    PROBLEM if empty_path else WARNING,
                    f"{qualified} names {', '.join(unqualified)} without a schema: "
                    + (
                        f"with search_path = '' {when} with `relation \"{unqualified[0]}\" does not exist "
                        "(SQLSTATE 42P01)`."
                        if empty_path
                        else "it works or fails with `relation ... does not exist (42P01)` depending on who calls it."
                    ),
                )
            )
        quoted = sorted({table for _, table, was_quoted in writes if was_quoted and table != table.lower()})
        if quoted:
            findings.append(
                (WARNING, f"{qualified} writes quoted mixed-case names ({', '.join(quoted)}): they must match exactly.")
            )
    details = {"triggers": listed, "statements": statements}
    if not findings:
        return Check(name, OK, "Every function a trigger on auth.users calls can write what it writes.", "", details)
    worst_status = PROBLEM if any(status == PROBLEM for status, _ in findings) else WARNING
    return Check(
        name,
        worst_status,
        " ".join(text for _, text in findings),
        "Qualify every table as public.<name>, make the function SECURITY DEFINER with SET search_path = '', and "
        "give its owner INSERT on the tables it writes. Review, then apply as a migration:"
        if statements
        else "Qualify every table as public.<name>.",
        details,
    )


def _may_insert(role: str, schema: str, table: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT to_regclass(format('%%I.%%I', %s::text, %s::text)) IS NULL "
            "OR has_table_privilege(%s, format('%%I.%%I', %s::text, %s::text), 'INSERT')",
            [schema, table, role, schema, table],
        )
        return cursor.fetchone()[0]


#: How far back failed webhook deliveries are counted.
DELIVERY_WINDOW = "24 hours"
#: Roles that run pg_net itself (or own everything): not an exposure.
NET_OWNERS = ("postgres", "supabase_admin", "supabase_functions_admin")


def check_webhook_deliveries() -> Check:
    """Database Webhooks (and the sign-up webhook) are sent by pg_net: its responses table
    says which deliveries failed, and any role that may use schema `net` can read the
    queued requests, headers (the webhook's secret) included."""
    name = "Webhook deliveries (pg_net)"
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT to_regclass('net._http_response') IS NOT NULL, "
            "CASE WHEN to_regclass('net._http_response') IS NULL THEN false "
            "ELSE has_table_privilege('net._http_response', 'SELECT') END"
        )
        installed, readable = cursor.fetchone()
        if not installed:
            return Check(name, OK, "pg_net is not installed: no Database Webhook deliveries to check.", "", {})
        cursor.execute(
            "SELECT r.rolname FROM pg_roles r WHERE has_schema_privilege(r.oid, 'net', 'USAGE') "
            "AND NOT r.rolsuper AND r.rolname <> ALL(%s) AND r.rolname NOT LIKE 'pg\\_%%' ORDER BY r.rolname",
            [list(NET_OWNERS)],
        )
        readers = [row[0] for row in cursor.fetchall()]
        failures, latest = 0, []
        if readable:
            failed = (
                "created > now() - interval '" + DELIVERY_WINDOW + "' AND (timed_out IS TRUE "
                "OR error_msg IS NOT NULL OR status_code IS NULL OR status_code >= 400)"
            )
            cursor.execute("SELECT count(*) FROM net._http_response WHERE " + failed)
            (failures,) = cursor.fetchone()
            cursor.execute(
                "SELECT status_code, coalesce(error_msg, CASE WHEN timed_out THEN 'timed out' END), created "
                "FROM net._http_response WHERE " + failed + " ORDER BY created DESC LIMIT 5"
            )
            latest = [
                {"status": status, "error": error or "", "at": created.isoformat()}
                for status, error, created in cursor.fetchall()
            ]
    found, advice, statements = [], [], []
    if failures:
        found.append(
            f"{failures} pg_net request(s) failed in the last {DELIVERY_WINDOW} (an error, a timeout or an HTTP "
            "status of 400 or more): a sign-up webhook that failed left its user to the trigger and the watchdog."
        )
        advice.append(
            "Check the webhook's URL and secret (provisioning_webhook_sql), the dashboard's /hooks/signup/ logs, and "
            "the watchdog; `provisioning_watchdog --heal` provisions who was missed."
        )
    if not readable:
        found.append("The dashboard's role may not read net._http_response: failed deliveries were not counted.")
    if readers:
        found.append(
            f"Role(s) {', '.join(readers)} may use schema net: they can read queued requests, headers included "
            "(the webhook's bearer secret)."
        )
        advice.append("Unless a role needs pg_net, take it away (review, then run as postgres):")
        statements += [f"REVOKE USAGE ON SCHEMA net FROM {quote_role(r)};" for r in readers]
    if not found:
        return Check(
            name,
            OK,
            f"No pg_net request failed in the last {DELIVERY_WINDOW}; no role but pg_net's own may read its queue.",
            "",
            {},
        )
    return Check(
        name,
        WARNING if failures or readers else OK,
        " ".join(found),
        " ".join(advice),
        {"failed_deliveries": latest, "failures": failures, "net_readers": readers, "statements": statements},
    )


def quote_role(role: str) -> str:
    return sql.Identifier(role).as_string(connection.connection)
