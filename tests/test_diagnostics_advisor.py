"""Supabase's Security Advisor (the lints of supabase/splinter) in "Rows the app can read (RLS
and grants)", scoped to the tables the spec writes and auth.users: each bad shape is built in
the test's transaction (DDL rolls back with it), reported with its lint's name and level, and
the statements the check proposes make it pass again."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from provisioning import diagnostics
from tests.factories import execute, make_auth_user, run_command

pytestmark = pytest.mark.django_db

VISIBLE = "Rows the app can read (RLS and grants)"


def visibility() -> diagnostics.Check:
    (found,) = [c for c in diagnostics.run_checks().checks if c.name == VISIBLE]
    return found


def lints(found: diagnostics.Check) -> set[tuple[str, str, str]]:
    return {(lint["lint"], lint["level"], lint["object"]) for lint in found.details["lints"]}


def apply_fixes(found: diagnostics.Check) -> None:
    for statement in found.details["statements"]:
        execute(statement)


def test_the_demo_schema_has_row_level_security_and_owner_policies_and_no_lint():
    make_auth_user()

    found = visibility()

    assert found.status == diagnostics.OK, found.found
    assert found.details["lints"] == []
    rows = {r["table"]: r for r in found.details["rows"]}
    assert {r["row level security"] for r in rows.values()} == {"on"}
    assert rows["public.wallets"]["another signed-in user sees"] == 0
    assert "rls_disabled_in_public" in found.found  # says what was looked for


def test_rls_off_on_an_exposed_table_is_a_problem_and_enabling_it_with_the_owner_policy_passes():
    user_id = make_auth_user()
    execute('DROP POLICY "Users read their own wallet" ON public.wallets')
    execute("ALTER TABLE public.wallets DISABLE ROW LEVEL SECURITY")

    found = visibility()

    assert found.status == diagnostics.PROBLEM
    assert lints(found) == {("rls_disabled_in_public", "ERROR", "public.wallets")}
    assert (
        "rls_disabled_in_public (ERROR): public.wallets is in a schema the API serves and row level security is "
        "off: anyone with the anon key can read every row" in found.found
    )
    assert 'ALTER TABLE "public"."wallets" ENABLE ROW LEVEL SECURITY;' in found.details["statements"]
    assert any('"Users read their own wallet"' in s for s in found.details["statements"])
    code, out = run_command("provisioning_doctor", "--json")
    assert code == 1
    assert {c["name"]: c["status"] for c in json.loads(out)["checks"]}[VISIBLE] == "problem"

    apply_fixes(found)

    fixed = visibility()
    assert fixed.status == diagnostics.OK, fixed.found
    view = {t["table"]: t for t in diagnostics.app_view(user_id, None)["tables"]}
    assert view["public.wallets"]["owner"] is True
    assert view["public.wallets"]["others"] is False and view["public.wallets"]["anon"] is False


def test_rls_off_names_what_else_the_grants_let_the_api_roles_do():
    make_auth_user()
    execute(
        "ALTER TABLE public.profiles DISABLE ROW LEVEL SECURITY; REVOKE SELECT ON public.profiles FROM anon;"
        "GRANT UPDATE, DELETE ON public.profiles TO authenticated"
    )

    found = visibility()

    assert (
        "rls_disabled_in_public (ERROR): public.profiles is in a schema the API serves and row level security is "
        "off: any signed-in user can read every row (and update, delete rows)." in found.found
    )


def test_rls_off_is_shown_as_a_problem_on_the_health_page(viewer_client):
    make_auth_user()
    execute("ALTER TABLE public.users DISABLE ROW LEVEL SECURITY")

    body = viewer_client.get(reverse("provisioning-health")).content.decode()

    heading = body.index(f'<th scope="row">{VISIBLE}</th>')
    following = body.find('<th scope="row">', heading + 1)
    row = body[body.rindex("<tr", 0, heading) : following if following > 0 else None]
    assert row.startswith('<tr class="health-problem">')
    assert "rls_disabled_in_public (ERROR): public.users" in row
    assert "ALTER TABLE &quot;public&quot;.&quot;users&quot; ENABLE ROW LEVEL SECURITY;" in row


def test_a_policy_while_rls_is_off_is_reported_and_enabling_rls_passes():
    make_auth_user()
    # The owner policy written, RLS never turned on (or turned off again).
    execute("ALTER TABLE public.profiles DISABLE ROW LEVEL SECURITY")

    found = visibility()

    assert found.status == diagnostics.PROBLEM
    assert lints(found) == {
        ("policy_exists_rls_disabled", "ERROR", "public.profiles"),
        ("rls_disabled_in_public", "ERROR", "public.profiles"),
    }
    assert (
        'policy_exists_rls_disabled (ERROR): public.profiles has policies ("Users read their own profile") but '
        "row level security is off, so none of them applies" in found.found
    )
    assert found.details["statements"] == ['ALTER TABLE "public"."profiles" ENABLE ROW LEVEL SECURITY;']
    apply_fixes(found)
    assert visibility().status == diagnostics.OK


def test_a_view_exposing_auth_users_is_reported_and_revoking_it_passes():
    make_auth_user()
    # A view in public over auth.users: by default a view runs as its owner, and the schema's
    # default privileges grant it to anon and authenticated.
    execute("CREATE VIEW public.members AS SELECT id, email, raw_user_meta_data FROM auth.users")

    found = visibility()

    assert found.status == diagnostics.PROBLEM
    assert {
        ("auth_users_exposed", "ERROR", "public.members"),
        ("security_definer_view", "ERROR", "public.members"),
    } == lints(found)
    assert "auth_users_exposed (ERROR): the view public.members reads auth.users" in found.found
    assert any(s.startswith('REVOKE SELECT ON "public"."members" FROM') for s in found.details["statements"])
    apply_fixes(found)
    assert visibility().status == diagnostics.OK


def test_a_materialized_view_of_auth_users_is_exposed_whatever_its_options():
    make_auth_user()
    execute(
        "CREATE MATERIALIZED VIEW public.member_emails AS SELECT id, email FROM auth.users;"
        "GRANT SELECT ON public.member_emails TO anon"
    )

    found = visibility()

    assert lints(found) == {("auth_users_exposed", "ERROR", "public.member_emails")}
    apply_fixes(found)
    assert visibility().status == diagnostics.OK


def test_a_security_definer_view_over_a_spec_table_is_reported_and_security_invoker_passes():
    make_auth_user()
    execute("CREATE VIEW public.wallet_balances AS SELECT user_id, usdt_balance, btc_balance FROM public.wallets")

    found = visibility()

    assert found.status == diagnostics.PROBLEM
    assert lints(found) == {("security_definer_view", "ERROR", "public.wallet_balances")}
    assert (
        "security_definer_view (ERROR): the view public.wallet_balances over public.wallets runs as its owner"
        in found.found
    )
    assert 'ALTER VIEW "public"."wallet_balances" SET (security_invoker = on);' in found.details["statements"]
    apply_fixes(found)
    assert visibility().status == diagnostics.OK


def test_a_view_over_an_unrelated_table_is_not_this_checks_business():
    execute(
        "CREATE TABLE public.news (id int PRIMARY KEY, title text);"
        "ALTER TABLE public.news ENABLE ROW LEVEL SECURITY;"
        "CREATE VIEW public.headlines AS SELECT title FROM public.news"
    )

    assert visibility().details["lints"] == []


def test_a_policy_calling_auth_uid_per_row_is_a_warning_and_the_select_wrapper_passes():
    user_id = make_auth_user()
    execute(
        'DROP POLICY "Users read their own profile" ON public.profiles;'
        'CREATE POLICY "Own profile" ON public.profiles FOR ALL TO authenticated '
        "USING (auth.uid() = user_id) WITH CHECK (auth.uid() = user_id)"
    )

    found = visibility()

    assert found.status == diagnostics.WARNING
    assert lints(found) == {("auth_rls_initplan", "WARN", "public.profiles")}
    assert 'auth_rls_initplan (WARN): policy "Own profile" on public.profiles calls auth.uid() for each row' in (
        found.found
    )
    (statement,) = found.details["statements"]
    assert statement.startswith('ALTER POLICY "Own profile" ON "public"."profiles" USING (')
    assert "(SELECT auth.uid())" in statement and "WITH CHECK (" in statement
    apply_fixes(found)
    assert visibility().status == diagnostics.OK
    view = {t["table"]: t for t in diagnostics.app_view(user_id, None)["tables"]}
    assert view["public.profiles"]["owner"] is True and view["public.profiles"]["others"] is False
