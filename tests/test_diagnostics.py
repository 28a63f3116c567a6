"""Provisioning health: every check on the healthy demo schema and on broken copies of it
(made inside the test transaction, so they roll back), the simulated sign-up, the page, and
provisioning_doctor's exit codes."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from django.db import connection
from django.urls import reverse

from provisioning import diagnostics
from provisioning.actors import Actor
from provisioning.engine.services import ProvisioningDenied
from provisioning.models import AuditEvent
from provisioning.spec import table_spec
from tests.factories import (
    ALL_TABLES,
    SOL_BALANCE_TRIGGER,
    break_schema,
    count,
    disable_trigger,
    drop_owner_policy,
    execute,
    make_auth_user,
    make_chained_shape,
    make_profiles_shape_b,
    run_command,
)
from tests.processes import manage_env, run_manage

pytestmark = pytest.mark.django_db

USERS, PROFILES, WALLETS = table_spec("users"), table_spec("profiles"), table_spec("wallets")
ROOT = Path(__file__).resolve().parent.parent


def check(report: diagnostics.Report, name: str) -> diagnostics.Check:
    matches = [c for c in report.checks if c.name == name]
    assert matches, f"no check named {name!r} in {[c.name for c in report.checks]}"
    return matches[0]


def not_ok(report: diagnostics.Report) -> dict[str, str]:
    return {c.name: c.status for c in report.checks if not c.ok}


def row_counts() -> dict[str, int]:
    counts = {t: count(t) for t in ALL_TABLES}
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM auth.users")
        counts["auth.users"] = cursor.fetchone()[0]
    return counts


def web_actor(user) -> Actor:
    return Actor(username=user.username, channel=AuditEvent.Channel.WEB, user=user)


# --- the healthy schema -------------------------------------------------------------------


def test_every_check_is_ok_on_the_healthy_demo_schema(cli_actor):
    make_auth_user()
    make_auth_user()

    report = diagnostics.run_checks(simulate_signup=True, actor=cli_actor)

    assert not_ok(report) == {}
    assert report.status == diagnostics.OK
    names = [c.name for c in report.checks]
    assert names[:3] == ["Sign-up trigger", "Sign-up function", "Simulated sign-up"]
    assert {"Table public.profiles", "Index on public.profiles.user_id", "Orphaned app rows"} <= set(names)
    assert (
        "CREATE OR REPLACE FUNCTION public.handle_new_user()" in check(report, "Sign-up function").details["definition"]
    )


def test_summary_is_ok_on_the_healthy_schema_and_names_what_needs_attention():
    assert diagnostics.summary().status == diagnostics.OK
    assert diagnostics.summary().counts[diagnostics.PROBLEM] == 0

    disable_trigger()

    summary = diagnostics.summary()
    assert summary.status == diagnostics.PROBLEM
    assert {"name": "Sign-up trigger", "status": "problem"} in summary.attention


# --- broken copies --------------------------------------------------------------------------


def test_dropped_trigger_is_a_problem_and_the_simulated_signup_gets_no_rows(cli_actor):
    execute("DROP TRIGGER on_auth_user_created ON auth.users")

    report = diagnostics.run_checks(simulate_signup=True, actor=cli_actor)

    trigger = check(report, "Sign-up trigger")
    assert trigger.status == diagnostics.PROBLEM
    assert "No trigger on auth.users calls public.handle_new_user()" in trigger.found
    assert "provisioning_trigger_sql" in trigger.advice
    simulated = check(report, "Simulated sign-up")
    assert simulated.status == diagnostics.PROBLEM
    assert simulated.details["rows_appeared"] == []
    assert simulated.details["error"] is None
    # The function is still there and fine: the cause is the trigger alone.
    assert check(report, "Sign-up function").ok


def test_disabled_trigger_is_a_problem_with_the_statement_that_enables_it():
    disable_trigger()

    result = diagnostics.check_trigger()

    assert result.status == diagnostics.PROBLEM
    assert "does not fire" in result.found
    assert "tgenabled = 'D'" in result.found
    assert "ALTER TABLE auth.users ENABLE TRIGGER on_auth_user_created;" in result.advice


def test_trigger_writing_a_missing_column_is_named_with_the_exact_database_error(cli_actor):
    execute(SOL_BALANCE_TRIGGER)

    function = diagnostics.check_function()
    simulated = diagnostics.simulate_signup(actor=cli_actor)

    assert function.status == diagnostics.PROBLEM
    assert "public.wallets.sol_balance, which does not exist" in function.found
    assert simulated.status == diagnostics.PROBLEM
    assert simulated.details["error"]["message"] == 'column "sol_balance" of relation "wallets" does not exist'
    assert simulated.details["error"]["sqlstate"] == "42703"
    assert 'column "sol_balance" of relation "wallets" does not exist' in simulated.found
    assert simulated.details["rows_appeared"] == []


def test_profiles_shape_b_is_drift_in_the_table_and_the_function(cli_actor):
    make_profiles_shape_b()

    report = diagnostics.run_checks(simulate_signup=True, actor=cli_actor)

    table = check(report, "Table public.profiles")
    assert table.status == diagnostics.WARNING
    assert table.details["skipped_columns"] == ["role", "status", "preferences", "points", "level"]
    function = check(report, "Sign-up function")
    assert function.status == diagnostics.PROBLEM
    assert (
        "It writes public.profiles.role, public.profiles.status, public.profiles.preferences, "
        "public.profiles.points, public.profiles.level, which do not exist" in function.found
    )
    simulated = check(report, "Simulated sign-up")
    assert simulated.details["error"]["message"] == 'column "role" of relation "profiles" does not exist'
    # Shape B's user_id is the primary key: unique and indexed.
    assert check(report, "Index on public.profiles.user_id").ok


def test_missing_unique_index_on_profiles_user_id_is_a_problem_with_both_index_statements(cli_actor):
    execute("DROP INDEX public.profiles_user_id_key")

    report = diagnostics.run_checks(simulate_signup=True, actor=cli_actor)

    table = check(report, "Table public.profiles")
    assert table.status == diagnostics.PROBLEM
    assert "Nothing makes public.profiles.user_id unique" in table.found
    assert "CREATE UNIQUE INDEX CONCURRENTLY profiles_user_id_key ON public.profiles (user_id);" in table.advice
    index = check(report, "Index on public.profiles.user_id")
    assert index.status == diagnostics.WARNING
    assert index.details["statements"] == [
        "CREATE INDEX CONCURRENTLY profiles_user_id_idx ON public.profiles (user_id);"
    ]
    assert diagnostics.key_index_statement(PROFILES) == index.details["statements"][0]
    assert diagnostics.key_index_statement(WALLETS) is None
    assert "ON CONFLICT (user_id)" in check(report, "Sign-up function").found
    simulated = check(report, "Simulated sign-up")
    assert simulated.details["error"]["sqlstate"] == "42P10"


def test_recommended_key_index_statement_is_valid_sql_that_satisfies_the_check():
    execute("DROP INDEX public.profiles_user_id_key")
    statement = diagnostics.key_index_statement(PROFILES)

    # CONCURRENTLY cannot run in the test's transaction; the same statement without it can.
    execute(statement.replace(" CONCURRENTLY", ""))

    assert diagnostics.check_key_index(PROFILES).ok


def test_invalid_index_left_by_a_failed_build_does_not_count():
    execute("DROP INDEX public.profiles_user_id_key")
    execute("CREATE INDEX profiles_user_id_idx ON public.profiles (user_id)")
    execute("UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'public.profiles_user_id_idx'::regclass")

    result = diagnostics.check_key_index(PROFILES)

    assert result.status == diagnostics.WARNING
    assert "invalid" in result.found
    assert result.details["statements"] == [
        "DROP INDEX CONCURRENTLY public.profiles_user_id_idx; "
        "CREATE INDEX CONCURRENTLY profiles_user_id_idx ON public.profiles (user_id);"
    ]


def test_key_column_of_another_type_than_auth_users_id_is_a_problem():
    drop_owner_policy("wallets")  # a column a policy reads cannot change its type
    execute("ALTER TABLE public.wallets ALTER COLUMN user_id TYPE text")

    result = diagnostics.check_table(WALLETS, "uuid")

    assert result.status == diagnostics.PROBLEM
    assert "public.wallets.user_id is text but auth.users.id is uuid" in result.found


def test_not_null_column_the_spec_does_not_fill_is_a_problem():
    execute("ALTER TABLE public.wallets ADD COLUMN kyc_level integer NOT NULL")

    result = diagnostics.check_table(WALLETS, "uuid")

    assert result.status == diagnostics.PROBLEM
    assert "public.wallets.kyc_level is NOT NULL with no default" in result.found
    assert "kyc_level" in diagnostics.check_function().found


def test_orphan_wallet_is_counted_with_a_sample():
    make_auth_user()
    orphan = uuid.uuid4()
    execute("INSERT INTO public.wallets (user_id) VALUES (%s)", [orphan])

    result = diagnostics.check_orphans()

    assert result.status == diagnostics.WARNING
    assert result.details["rows"] == [{"table": "public.wallets", "orphaned rows": 1, "sample user ids": str(orphan)}]
    assert diagnostics.check_duplicates().ok


def test_duplicate_profile_is_a_problem():
    user_id = make_auth_user()
    make_auth_user()
    execute("DROP INDEX public.profiles_user_id_key")  # the trigger's ON CONFLICT needs it: drop it after
    execute("INSERT INTO public.profiles (user_id) VALUES (%s)", [user_id])

    result = diagnostics.check_duplicates()

    assert result.status == diagnostics.PROBLEM
    assert result.details["rows"] == [
        {"table": "public.profiles", "users": 1, "rows": 2, "sample (rows)": f"{user_id} (2)"}
    ]
    assert "CREATE UNIQUE INDEX CONCURRENTLY profiles_user_id_key" in result.advice


def test_coverage_groups_missing_rows_by_week_of_signup():
    make_auth_user(created_at="2026-01-07 10:00+00")  # complete
    make_auth_user(keep=(), created_at="2026-01-08 10:00+00")
    make_auth_user(keep=("users",), created_at="2026-02-03 10:00+00")

    result = diagnostics.check_coverage()

    assert result.status == diagnostics.WARNING
    assert result.details["rows"] == [
        {"week of": "2026-02-02", "sign-ups": 1, "missing users": 0, "missing profiles": 1, "missing wallets": 1},
        {"week of": "2026-01-05", "sign-ups": 2, "missing users": 1, "missing profiles": 1, "missing wallets": 1},
    ]
    assert "most recently the week of 2026-02-02" in result.found


def test_users_that_cannot_be_provisioned_are_grouped_by_reason():
    make_auth_user(phone="15550123", keep=())
    make_auth_user(phone="15550124", keep=())

    result = diagnostics.check_cannot_provision()

    assert result.status == diagnostics.WARNING
    assert result.details["rows"] == [
        {"reason": "users: auth user has no email; public.users.email is NOT NULL", "rows": 2}
    ]


def test_the_health_check_counts_people_once_and_rows_apart():
    make_auth_user(keep=())
    make_auth_user(None, phone="15550125", keep=())
    make_chained_shape()

    result = diagnostics.check_cannot_provision()

    assert result.found.startswith("2 users cannot be provisioned (6 missing rows): ")
    assert result.details["users"] == 2


PHONE_ONLY = "users: auth user has no email; public.users.email is NOT NULL"
NO_NETWORK = "wallets: public.wallets.network is NOT NULL with no default and the spec does not fill it"


def add_wallets_network_without_default() -> None:
    execute("ALTER TABLE public.wallets ADD COLUMN network text NOT NULL DEFAULT 'solana'")
    execute("ALTER TABLE public.wallets ALTER COLUMN network DROP DEFAULT")


def test_a_column_no_one_fills_gets_its_own_advice_not_the_phone_only_one():
    make_auth_user(keep=("users", "profiles"))  # lacks only a wallet
    add_wallets_network_without_default()

    result = diagnostics.check_cannot_provision()

    assert [row["reason"] for row in result.details["rows"]] == [NO_NETWORK]
    assert "phone" not in result.advice.lower()
    assert "ALTER TABLE public.wallets ALTER COLUMN network SET DEFAULT" in result.advice
    assert result.details["advice"] == {NO_NETWORK: result.advice}


def test_each_reason_a_user_cannot_be_provisioned_gets_its_own_advice():
    make_auth_user(phone="15550123", keep=())
    make_auth_user(keep=("users", "profiles"))
    add_wallets_network_without_default()

    result = diagnostics.check_cannot_provision()
    advice = result.details["advice"]

    assert set(advice) == {PHONE_ONLY, NO_NETWORK}
    assert "phone-only" in advice[PHONE_ONLY]
    assert "ALTER TABLE public.users ALTER COLUMN email DROP NOT NULL" in advice[PHONE_ONLY]
    assert "phone" not in advice[NO_NETWORK].lower()
    assert "SET DEFAULT" in advice[NO_NETWORK] and "SET DEFAULT" not in advice[PHONE_ONLY]
    for reason, text in advice.items():  # the advice names the reason it answers
        assert f"“{reason}”: {text}" in result.advice


def test_a_value_another_row_holds_and_a_chain_get_advice_of_their_own():
    from tests.factories import make_chained_shape

    make_chained_shape()  # profiles and wallets need the user's public.users row
    execute("ALTER TABLE public.users ALTER COLUMN password SET DEFAULT 'unused'")
    disable_trigger()
    make_auth_user(phone="15550125")
    taken = make_auth_user()
    with connection.cursor() as cursor:  # an orphaned row holds the second user's email
        cursor.execute(
            "INSERT INTO public.users (id, email) SELECT gen_random_uuid(), email FROM auth.users WHERE id = %s",
            [taken],
        )

    advice = diagnostics.check_cannot_provision().details["advice"]

    collided = "users: email already used by another public.users row (users_email_key)"
    assert "orphan" in advice[collided].lower() and "phone" not in advice[collided].lower()
    chained = {r: a for r, a in advice.items() if r.startswith("profiles: needs its public.users row")}
    assert len(chained) == 2, advice
    for reason, text in chained.items():
        assert text.startswith("Fix the public.users row first: ")
        assert ("phone-only" in text) == ("has no email" in reason), (reason, text)
        assert ("orphan" in text.lower()) == ("already used" in reason), (reason, text)


# --- the simulated sign-up -----------------------------------------------------------------


@pytest.mark.parametrize(
    "broken", [None, "trigger dropped", "trigger disabled", "trigger writes a missing column", "profiles shape B"]
)
def test_simulated_signup_leaves_every_table_as_it_was_and_one_audit_event(cli_actor, broken):
    make_auth_user()
    make_auth_user(keep=("users",))
    if broken is not None:
        break_schema(broken)
    before = row_counts()
    events = AuditEvent.objects.count()

    result = diagnostics.simulate_signup(actor=cli_actor)

    assert row_counts() == before
    assert count("users", [uuid.UUID(result.details["synthetic_user_id"])]) == 0
    assert AuditEvent.objects.count() == events + 1
    event = AuditEvent.objects.latest("id")
    assert event.action == AuditEvent.Action.SIMULATE_SIGNUP
    assert event.outcome == (AuditEvent.Outcome.SUCCEEDED if broken is None else AuditEvent.Outcome.FAILED)
    assert event.detail["status"] == result.status


def test_simulated_signup_is_refused_without_the_provision_permission(viewer):
    before = row_counts()

    with pytest.raises(ProvisioningDenied):
        diagnostics.simulate_signup(actor=web_actor(viewer))

    assert row_counts() == before
    event = AuditEvent.objects.latest("id")
    assert (event.action, event.outcome, event.actor_username) == ("simulate_signup", "denied", "view")


# --- PostgREST schema cache ---------------------------------------------------------------


def test_schema_cache_message_for_a_missing_column_is_drift_with_the_closest_names():
    make_profiles_shape_b()

    result = diagnostics.check_schema_cache("Could not find the 'id' column of 'profiles' in the schema cache")

    assert result.status == diagnostics.PROBLEM
    assert "public.profiles has no column id: this is schema drift, not a stale cache" in result.found
    assert result.details["closest_columns"][0] == "user_id"


def test_schema_cache_message_for_an_existing_column_is_a_stale_cache():
    result = diagnostics.check_schema_cache(
        '{"code":"PGRST204","message":"Could not find the \'id\' column of \'profiles\' in the schema cache"}'
    )

    assert result.status == diagnostics.WARNING
    assert "stale" in result.found
    assert "NOTIFY pgrst, 'reload schema'" in result.advice


@pytest.mark.parametrize(
    ("text", "table", "expected"),
    [
        (
            "Could not find the 'sol_balance' column of 'wallets' in the schema cache",
            "",
            ("public", "wallets", "sol_balance"),
        ),
        ("profiles.id", "", ("public", "profiles", "id")),
        ("public.profiles.id", "", ("public", "profiles", "id")),
        ("id", "profiles", ("public", "profiles", "id")),
        ("  'username'  ", "users", ("public", "users", "username")),
    ],
)
def test_schema_cache_question_forms(text, table, expected):
    assert diagnostics.parse_schema_cache_question(text, table) == expected


@pytest.mark.parametrize(("text", "table"), [("", ""), ("id", ""), ("id; drop table x", "profiles"), ("\x00", "")])
def test_schema_cache_question_that_cannot_be_understood_says_so(text, table):
    with pytest.raises(diagnostics.BadQuestion):
        diagnostics.parse_schema_cache_question(text, table)


def test_schema_cache_question_about_a_missing_table():
    result = diagnostics.check_schema_cache("profile.id")

    assert result.status == diagnostics.PROBLEM
    assert "There is no table public.profile" in result.found
    assert "profiles" in result.details["closest_tables"]


PGRST205 = '{{"code":"PGRST205","message":"Could not find the table \'{}\' in the schema cache"}}'


def test_pgrst205_for_a_table_that_does_not_exist_names_the_schema_that_has_it():
    execute("CREATE SCHEMA private; CREATE TABLE private.rewards (user_id uuid PRIMARY KEY)")

    result = diagnostics.check_schema_cache(PGRST205.format("public.rewards"))

    assert result.status == diagnostics.PROBLEM
    assert "There is no table public.rewards" in result.found and "PGRST205" in result.found
    assert result.details["same_name_in"] == ["private"]
    assert "reloading the cache will not help" in result.advice


def test_pgrst205_for_a_table_in_a_schema_the_api_does_not_serve_and_the_fix_applied():
    execute("CREATE SCHEMA private; CREATE TABLE private.rewards (user_id uuid PRIMARY KEY)")
    # Supabase's API role; its pgrst.db_schemas setting is the dashboard's "Exposed schemas".
    execute(
        "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticator') "
        "THEN CREATE ROLE authenticator NOLOGIN; END IF; END $$"
    )
    execute("ALTER ROLE authenticator SET pgrst.db_schemas = 'public, graphql_public'")

    broken = diagnostics.check_schema_cache(PGRST205.format("private.rewards"))

    assert broken.status == diagnostics.PROBLEM
    assert "the API does not serve schema private (exposed: public, graphql_public" in broken.found
    assert broken.details["sql"].startswith("ALTER ROLE authenticator SET pgrst.db_schemas = ")
    execute(broken.details["sql"].replace("%", "%%"))

    fixed = diagnostics.check_schema_cache(PGRST205.format("private.rewards"))
    assert fixed.status == diagnostics.WARNING
    assert "private" in fixed.details["exposed_schemas"]


def test_pgrst205_for_a_served_table_is_a_stale_cache_and_says_what_to_check_when_a_reload_fails():
    result = diagnostics.check_schema_cache(PGRST205.format("public.profiles"))

    assert result.status == diagnostics.WARNING
    assert "public.profiles exists in an exposed schema" in result.found
    assert result.details["exposed_schemas_from"].startswith(("Supabase's default", "pgrst.db_schemas"))
    assert "NOTIFY pgrst, 'reload schema'" in result.advice
    assert "may not listen on the `pgrst` channel" in result.advice and "fails to load" in result.advice


def test_doctor_cli_answers_a_schema_cache_question_in_text_and_json():
    code, out = run_command("provisioning_doctor", "--schema-cache", PGRST205.format("public.rewards"))
    assert code == 1 and "[problem] PostgREST schema cache" in out and "There is no table public.rewards" in out

    code, out = run_command("provisioning_doctor", "--schema-cache", "id", "--table", "profiles", "--json")
    assert code == 0 and json.loads(out)["status"] == diagnostics.WARNING

    code, out = run_command("provisioning_doctor", "--schema-cache", "id")
    assert code == 2 and "Which table?" in out


def test_reload_schema_cache_is_audited_and_refused_to_a_viewer(cli_actor, viewer):
    event = diagnostics.reload_schema_cache(actor=cli_actor)
    assert (event.action, event.outcome) == ("reload_schema_cache", "succeeded")

    with pytest.raises(ProvisioningDenied):
        diagnostics.reload_schema_cache(actor=web_actor(viewer))
    denied = AuditEvent.objects.latest("id")
    assert (denied.action, denied.outcome) == ("reload_schema_cache", "denied")


# --- the page ----------------------------------------------------------------------------------


def test_health_page_renders_for_a_viewer_without_the_actions(viewer_client):
    response = viewer_client.get(reverse("provisioning-health"))

    assert response.status_code == 200
    body = response.content.decode()
    assert "Provisioning health" in body
    assert "Sign-up trigger" in body
    assert "Index on public.profiles.user_id" in body
    assert 'value="Simulate a sign-up"' not in body


def test_health_page_names_a_disabled_trigger(viewer_client):
    disable_trigger()

    body = viewer_client.get(reverse("provisioning-health")).content.decode()

    assert "health-badge-problem" in body
    assert "ALTER TABLE auth.users ENABLE TRIGGER on_auth_user_created;" in body


def page_text(body: str) -> str:
    """What a person reads: the page without its tags, scripts and styles, unescaped."""
    import html
    import re

    body = re.sub(r"<(script|style)\b.*?</\1>", " ", body, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", body))


def test_the_health_page_shows_code_as_code_never_a_backtick(provisioner_client):
    make_auth_user(phone="15550126", keep=())
    break_schema("trigger writes a missing column")
    break_schema("orphan wallet")
    make_profiles_shape_b()
    url = reverse("provisioning-health")

    body = provisioner_client.get(
        url, {"message": "Could not find the 'user_id' column of 'wallets' in the schema cache"}
    ).content.decode()
    body += provisioner_client.post(reverse("provisioning-health-simulate-signup")).content.decode()

    assert "`" not in page_text(body)
    assert "<code>manage.py remove_orphans --dry-run</code>" in body
    assert "<code>NOTIFY pgrst, &#x27;reload schema&#x27;;</code>" in body
    assert "<code>column &quot;sol_balance&quot; of relation &quot;wallets&quot; does not exist</code>" in body


def test_the_schema_cache_answer_names_the_reload_button_where_it_is(provisioner_client):
    body = provisioner_client.get(
        reverse("provisioning-health"),
        {"message": "Could not find the 'user_id' column of 'wallets' in the schema cache"},
    ).content.decode()

    assert "button below" not in body
    answer = body.index("PostgREST&#x27;s schema cache is stale")
    assert body.index('value="Reload PostgREST schema cache"') < answer  # the button is above the answer
    assert "the “Reload PostgREST schema cache” button under Actions" in page_text(body)


@pytest.mark.parametrize(
    "broken", ["trigger dropped", "trigger writes a missing column", "trigger and function dropped"]
)
def test_the_sign_up_fix_shows_the_generated_sql_on_the_page_with_a_copy_button(provisioner_client, broken):
    import html
    import re

    from provisioning.engine import triggergen

    break_schema(broken)

    body = provisioner_client.get(reverse("provisioning-health")).content.decode()
    body += provisioner_client.post(reverse("provisioning-health-simulate-signup")).content.decode()

    blocks = re.findall(r'<details class="generated-trigger">(.*?)</details>', body, flags=re.S)
    assert blocks, "the generated SQL is on the page, collapsed"
    expected = triggergen.trigger_sql().split("\n", 2)[2]  # past the two lines that name the time
    for block in blocks:
        copy = re.search(r'<button type="button" class="copy-id copy-sql" data-copy="([^"]*)"', block)
        assert copy, "with a copy button"
        assert expected in html.unescape(copy.group(1))
        assert expected in html.unescape(re.search(r"<pre[^>]*>(.*?)</pre>", block, flags=re.S).group(1))
    assert "run <code>manage.py provisioning_trigger_sql</code>" not in body
    assert "“Generated SQL” under this check" in page_text(body)


def test_the_generated_sql_is_not_offered_where_the_trigger_is_fine(viewer_client):
    body = viewer_client.get(reverse("provisioning-health")).content.decode()

    assert 'class="generated-trigger"' not in body


def test_health_page_answers_a_schema_cache_question(viewer_client):
    make_profiles_shape_b()
    url = reverse("provisioning-health")

    body = viewer_client.get(
        url, {"message": "Could not find the 'id' column of 'profiles' in the schema cache"}
    ).content.decode()
    assert "public.profiles has no column id" in body

    response = viewer_client.get(url, {"message": "id"})
    assert response.status_code == 200
    assert "Which table?" in response.content.decode()

    # PGRST205, the table form of the message.
    body = viewer_client.get(
        url, {"message": "Could not find the table 'public.rewards' in the schema cache"}
    ).content.decode()
    assert "There is no table public.rewards" in body


@pytest.mark.parametrize(
    ("url_name", "action"),
    [
        ("provisioning-health-simulate-signup", "simulate_signup"),
        ("provisioning-health-reload-schema-cache", "reload_schema_cache"),
    ],
)
def test_health_actions_are_refused_to_a_viewer_and_audited(viewer_client, url_name, action):
    before = row_counts()

    response = viewer_client.post(reverse(url_name))

    assert response.status_code == 403
    assert row_counts() == before
    event = AuditEvent.objects.latest("id")
    assert (event.action, event.outcome, event.actor_username) == (action, "denied", "view")


def test_health_page_is_refused_to_staff_without_the_view_permission(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("nobody", is_staff=True))
    assert client.get(reverse("provisioning-health")).status_code == 403


def test_provisioner_simulates_a_signup_from_the_page(provisioner_client):
    before = row_counts()

    response = provisioner_client.post(reverse("provisioning-health-simulate-signup"))

    assert response.status_code == 200
    assert "Simulated sign-up (rolled back)" in response.content.decode()
    assert "A synthetic sign-up got its app user, profile and wallet" in response.content.decode()
    assert row_counts() == before
    event = AuditEvent.objects.latest("id")
    assert (event.action, event.outcome, event.actor_username) == ("simulate_signup", "succeeded", "prov")


def test_provisioner_reloads_the_schema_cache_from_the_page(provisioner_client):
    response = provisioner_client.post(reverse("provisioning-health-reload-schema-cache"))

    assert response.status_code == 302
    event = AuditEvent.objects.latest("id")
    assert (event.action, event.outcome, event.channel) == ("reload_schema_cache", "succeeded", "web")


def test_health_actions_do_not_answer_get(provisioner_client):
    assert provisioner_client.get(reverse("provisioning-health-simulate-signup")).status_code == 405


# --- provisioning_doctor ---------------------------------------------------------------------


def doctor(*args) -> tuple[int, str]:
    return run_command("provisioning_doctor", *args)


def test_doctor_exits_0_when_every_check_is_ok():
    make_auth_user()

    code, out = doctor()

    assert code == 0, out
    assert out.startswith("Provisioning health: ok")


def test_doctor_exits_0_on_warnings_alone():
    execute("INSERT INTO public.wallets (user_id) VALUES (%s)", [uuid.uuid4()])

    code, out = doctor("--json")

    assert code == 0
    data = json.loads(out)
    assert data["status"] == "warning"
    assert data["counts"]["problem"] == 0


def test_doctor_exits_1_on_a_problem_and_names_it():
    disable_trigger()

    code, out = doctor()

    assert code == 1
    assert "[problem] Sign-up trigger" in out
    assert "ENABLE TRIGGER on_auth_user_created" in out


def test_doctor_simulates_a_signup_on_demand():
    execute(SOL_BALANCE_TRIGGER)
    events = AuditEvent.objects.count()

    code, out = doctor("--json", "--simulate-signup")

    assert code == 1
    simulated = next(c for c in json.loads(out)["checks"] if c["name"] == "Simulated sign-up")
    assert simulated["details"]["error"]["message"] == 'column "sol_balance" of relation "wallets" does not exist'
    assert AuditEvent.objects.count() == events + 1
    assert AuditEvent.objects.latest("id").channel == "cli"


def test_doctor_exits_2_with_one_line_when_the_database_is_unreachable():
    result = run_manage("provisioning_doctor", env=manage_env(database_url="postgres://x@127.0.0.1:1/x"), timeout=60)

    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "database unreachable" in lines[0]


def test_doctor_exits_2_without_read_access_to_auth_users():
    execute("CREATE ROLE diag_no_auth_access")
    execute("SET LOCAL ROLE diag_no_auth_access")

    code, message = doctor()

    assert code == 2
    assert "permission denied" in message


def test_users_table_spec_is_checked_too():
    assert diagnostics.check_table(USERS, "uuid").ok


def test_a_check_that_cannot_read_is_a_problem_on_the_page_and_the_others_still_run():
    execute("CREATE ROLE diag_no_auth_access_page")
    execute("GRANT USAGE ON SCHEMA public TO diag_no_auth_access_page")
    execute("GRANT SELECT ON public.users, public.profiles, public.wallets TO diag_no_auth_access_page")
    execute("SET LOCAL ROLE diag_no_auth_access_page")

    report = diagnostics.run_checks()

    coverage = check(report, "Sign-ups missing rows")
    assert coverage.status == diagnostics.PROBLEM
    assert coverage.found == "The check could not run: permission denied for schema auth."
    assert check(report, "Table public.users").ok


# --- the app tables' own rules (foreign keys, CHECKs, triggers) -------------------------------


def test_healthy_schema_has_no_foreign_key_check_or_trigger_findings():
    make_auth_user()
    report = diagnostics.run_checks()

    for name in ("Foreign keys between app tables", "CHECK constraints", "Triggers on app tables"):
        assert check(report, name).status == diagnostics.OK, check(report, name).found


def test_doctor_counts_users_a_foreign_key_chain_blocks_and_shows_the_write_order():
    from tests.factories import make_chained_shape

    make_auth_user(keep=("users",))
    make_auth_user(keep=())
    make_chained_shape()

    found = check(diagnostics.run_checks(), "Foreign keys between app tables")

    assert found.status == diagnostics.WARNING
    assert "2 missing row(s) cannot be provisioned because their parent row cannot be written" in found.found
    assert "needs its public.users row, which cannot be written" in found.found
    assert found.details["order"][0] == "public.users"
    assert "public.profiles.user_id -> public.users" in found.details["foreign_keys"]


def test_doctor_reports_a_foreign_key_cycle_as_a_problem_and_exits_1():
    execute(
        "ALTER TABLE public.profiles ADD CONSTRAINT profiles_user_fk "
        "FOREIGN KEY (user_id) REFERENCES public.users (id);"
        "ALTER TABLE public.users ADD CONSTRAINT users_profile_fk "
        "FOREIGN KEY (id) REFERENCES public.profiles (user_id)"
    )

    found = check(diagnostics.run_checks(), "Foreign keys between app tables")
    code, _ = run_command("provisioning_doctor")

    assert found.status == diagnostics.PROBLEM and "cycle" in found.found
    assert code == 1


def test_doctor_counts_rows_a_check_constraint_would_reject():
    make_auth_user("fine@example.com", keep=())
    make_auth_user("a@blocked.example", keep=())
    make_auth_user("b@blocked.example", keep=("users",))
    execute(
        "ALTER TABLE public.users ADD CONSTRAINT no_blocked_domain "
        "CHECK (email NOT LIKE '%%@blocked.example') NOT VALID"
    )
    execute("ALTER TABLE public.wallets ADD CONSTRAINT positive CHECK (usdt_balance > 0) NOT VALID")

    found = check(diagnostics.run_checks(), "CHECK constraints")

    assert found.status == diagnostics.WARNING
    rejects = {row["constraint"]: row["rejects"] for row in found.details["rows"]}
    assert rejects == {"public.users.no_blocked_domain": 1, "public.wallets.positive": 3}


def test_doctor_names_triggers_that_run_before_an_insert_into_an_app_table():
    execute(
        "CREATE FUNCTION public.stamp() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;"
        "CREATE TRIGGER stamp BEFORE INSERT ON public.profiles FOR EACH ROW EXECUTE FUNCTION public.stamp()"
    )

    found = check(diagnostics.run_checks(), "Triggers on app tables")

    assert found.status == diagnostics.WARNING
    assert "public.profiles: stamp (public.stamp)" in found.found


def test_the_missing_rows_advice_leaves_out_users_that_cannot_be_provisioned():
    make_auth_user(keep=())  # 3 rows that can be written
    make_auth_user(None, phone="15550005555", keep=())  # 2 that can, 1 that cannot

    found = check(diagnostics.run_checks(), "Sign-ups missing rows")

    assert "Of these 6 missing rows, 1 cannot be provisioned" in found.found
    assert "it writes the 5 row(s) that can be written" in found.advice


# --- what Supabase users actually hit (issue 15, first checks) ---------------------------------


def test_a_foreign_key_to_auth_users_without_cascade_blocks_deleting_users_and_the_fix_works():
    assert check(diagnostics.run_checks(), "Deleting users").status == diagnostics.OK
    execute(
        "ALTER TABLE public.profiles ADD CONSTRAINT profiles_auth_fk FOREIGN KEY (user_id) REFERENCES auth.users (id)"
    )

    found = check(diagnostics.run_checks(), "Deleting users")

    assert found.status == diagnostics.PROBLEM
    assert "public.profiles.user_id (profiles_auth_fk, ON DELETE NO ACTION)" in found.found
    assert "23503" in found.found and "Database error deleting user" in found.found
    (statement,) = found.details["statements"]
    execute(statement)
    assert check(diagnostics.run_checks(), "Deleting users").status == diagnostics.OK


def test_auth_users_rows_with_null_tokens_are_counted_never_shown_and_the_fix_works():
    user_id = make_auth_user(secrets="MARKER-TOKEN-XYZ")
    execute("UPDATE auth.users SET recovery_token = NULL, email_change = NULL WHERE id = %s", [user_id])

    found = check(diagnostics.run_checks(), "Rows written into auth.users by hand")

    assert found.status == diagnostics.PROBLEM and found.found.startswith("1 auth user(s) have NULL")
    assert "converting NULL to string is unsupported" in found.found
    assert "MARKER-TOKEN-XYZ" not in str(found.as_dict())
    execute(found.details["statements"][0])
    assert check(diagnostics.run_checks(), "Rows written into auth.users by hand").status == diagnostics.OK


PG_NET_STUB = (
    # pg_net's response table, as the extension creates it (only the columns read here).
    "CREATE SCHEMA net; CREATE TABLE net._http_response (id bigserial PRIMARY KEY, status_code integer, "
    "content text, timed_out boolean, error_msg text, created timestamptz NOT NULL DEFAULT now())"
)


def test_failed_pg_net_deliveries_and_roles_that_can_read_its_queue_are_warnings_and_the_revoke_works():
    webhook = "Webhook deliveries (pg_net)"
    assert check(diagnostics.run_checks(), webhook).status == diagnostics.OK  # no pg_net: nothing to say
    execute(PG_NET_STUB)
    execute(
        "INSERT INTO net._http_response (status_code, error_msg, timed_out, created) VALUES "
        "(202, NULL, false, now()), (401, NULL, false, now()), (NULL, 'Couldn''t resolve host', false, now()), "
        "(500, NULL, false, now() - interval '3 days')"
    )
    execute("CREATE ROLE eloity_net_reader NOLOGIN; GRANT USAGE ON SCHEMA net TO eloity_net_reader")

    found = check(diagnostics.run_checks(), webhook)

    assert found.status == diagnostics.WARNING
    assert found.found.startswith("2 pg_net request(s) failed in the last 24 hours")
    assert {d["status"] for d in found.details["failed_deliveries"]} == {401, None}
    assert "Couldn't resolve host" in str(found.details["failed_deliveries"])
    assert found.details["net_readers"] == ["eloity_net_reader"] and "bearer secret" in found.found
    assert "provisioning_watchdog --heal" in found.advice

    execute(found.details["statements"][0])
    execute("DELETE FROM net._http_response WHERE status_code IS DISTINCT FROM 202")
    assert check(diagnostics.run_checks(), webhook).status == diagnostics.OK


def test_a_sign_up_function_that_catches_exceptions_is_a_warning():
    assert check(diagnostics.run_checks(), "Errors hidden by the sign-up function").status == diagnostics.OK
    execute(
        "CREATE OR REPLACE FUNCTION public.handle_new_user() RETURNS trigger LANGUAGE plpgsql "
        "SECURITY DEFINER SET search_path = '' AS $$ BEGIN "
        "INSERT INTO public.profiles (user_id) VALUES (NEW.id); RETURN NEW; "
        "EXCEPTION WHEN others THEN RETURN NEW; END $$"
    )

    found = check(diagnostics.run_checks(), "Errors hidden by the sign-up function")

    assert found.status == diagnostics.WARNING and "EXCEPTION WHEN" in found.found


def test_an_update_trigger_whose_function_is_not_security_definer_is_a_problem_and_the_fix_works():
    execute(
        "CREATE FUNCTION public.touch_profile() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "INSERT INTO public.profiles (user_id) VALUES (NEW.id) ON CONFLICT (user_id) DO NOTHING; RETURN NEW; END $$;"
        "CREATE TRIGGER on_auth_user_signed_in AFTER UPDATE ON auth.users "
        "FOR EACH ROW EXECUTE FUNCTION public.touch_profile()"
    )

    found = check(diagnostics.run_checks(), "Functions triggered by auth.users")

    assert found.status == diagnostics.PROBLEM
    assert "on_auth_user_signed_in (on UPDATE) -> public.touch_profile()" in found.details["triggers"]
    assert "every sign-in (Supabase updates last_sign_in_at) fails" in found.found
    assert "permission denied for table profiles (SQLSTATE 42501)" in found.found
    for statement in found.details["statements"]:
        execute(statement)
    assert check(diagnostics.run_checks(), "Functions triggered by auth.users").status == diagnostics.OK


def test_a_security_definer_owned_by_a_role_without_insert_is_a_problem_and_the_grant_fixes_it():
    execute(
        "CREATE ROLE eloity_weak_owner NOLOGIN; GRANT USAGE ON SCHEMA public TO eloity_weak_owner; "
        "GRANT CREATE ON SCHEMA public TO eloity_weak_owner;"
        "ALTER FUNCTION public.handle_new_user() OWNER TO eloity_weak_owner"
    )

    found = check(diagnostics.run_checks(), "Functions triggered by auth.users")

    assert found.status == diagnostics.PROBLEM
    assert "owner eloity_weak_owner, who may not INSERT into public.profiles" in found.found
    for statement in found.details["statements"]:
        execute(statement)
    assert check(diagnostics.run_checks(), "Functions triggered by auth.users").status == diagnostics.OK


def test_unqualified_table_names_with_an_empty_search_path_are_a_problem():
    execute(
        "CREATE OR REPLACE FUNCTION public.handle_new_user() RETURNS trigger LANGUAGE plpgsql "
        "SECURITY DEFINER SET search_path = '' AS $$ BEGIN "
        "INSERT INTO profiles (user_id) VALUES (NEW.id); RETURN NEW; END $$"
    )

    found = check(diagnostics.run_checks(), "Functions triggered by auth.users")

    assert found.status == diagnostics.PROBLEM
    assert 'relation "profiles" does not exist (SQLSTATE 42P01)' in found.found


# --- what a sign-up copies from the auth user (issue 15, checks 4 and 5) ------------------------

METADATA_FUNCTION = (
    # The sign-up function copying a metadata key into a NOT NULL column, as teams write it.
    "ALTER TABLE public.profiles ADD COLUMN display_name text NOT NULL DEFAULT '';"
    "CREATE OR REPLACE FUNCTION public.handle_new_user() RETURNS trigger LANGUAGE plpgsql "
    "SECURITY DEFINER SET search_path = '' AS $$ BEGIN "
    "INSERT INTO public.users (id, email) VALUES (NEW.id, NEW.email) ON CONFLICT (id) DO NOTHING; "
    "INSERT INTO public.profiles (user_id, display_name, avatar_url) "
    "VALUES (NEW.id, NEW.raw_user_meta_data->>'full_name', NEW.raw_user_meta_data->>'avatar_url') "
    "ON CONFLICT (user_id) DO NOTHING; "
    "INSERT INTO public.wallets (user_id) VALUES (NEW.id) ON CONFLICT (user_id) DO NOTHING; "
    "RETURN NEW; END $$"
)


def test_metadata_a_provider_does_not_send_into_a_not_null_column_is_a_problem_and_the_fix_works():
    name = "Sign-up metadata by provider"
    assert check(diagnostics.run_checks(), name).status == diagnostics.OK  # the function reads no metadata
    for _ in range(2):
        make_auth_user(provider="email", meta={"full_name": "Ada Lovelace", "avatar_url": "https://x/a.png"})
    for _ in range(3):
        make_auth_user(provider="google", meta={"name": "Grace Hopper", "picture": "https://x/g.png"})
    make_auth_user(provider="github", meta={"user_name": "linus"})
    make_auth_user(provider="google", meta={}, created_at="2020-01-01")  # not recent: not counted
    execute(METADATA_FUNCTION)

    found = check(diagnostics.run_checks(), name)

    assert found.status == diagnostics.PROBLEM
    assert (
        "public.handle_new_user() writes NEW.raw_user_meta_data->>'full_name' into public.profiles.display_name "
        "(NOT NULL), which comes out empty for 3 of 3 recent google sign-up(s): they do not send full_name "
        "(they send `name` instead)"
    ) in found.found
    assert "for 1 of 1 recent github sign-up(s): they do not send full_name, and" in found.found
    assert "email sign-up" not in found.found  # they send full_name
    assert "avatar_url" not in found.found  # nullable: a missing picture is no failure
    rows = {r["provider"]: r for r in found.details["rows"]}
    assert rows["google"] == {"provider": "google", "recent sign-ups": 3, "lack full_name": 3, "lack avatar_url": 3}
    assert rows["email"]["lack full_name"] == 0
    assert "coalesce(NEW.raw_user_meta_data->>'full_name', NEW.raw_user_meta_data->>'name', '')" in found.advice
    assert found.details["statements"] == ['ALTER TABLE "public"."profiles" ALTER COLUMN "display_name" DROP NOT NULL;']

    execute(found.details["statements"][0])
    fixed = check(diagnostics.run_checks(), name)
    assert fixed.status == diagnostics.OK and "full_name, avatar_url" in fixed.found


def test_metadata_with_a_fallback_is_no_problem():
    make_auth_user(provider="google", meta={"name": "Grace Hopper"})
    execute(
        METADATA_FUNCTION.replace(
            "NEW.raw_user_meta_data->>'full_name'",
            "coalesce(NEW.raw_user_meta_data->>'full_name', NEW.raw_user_meta_data->>'name', '')",
        )
    )

    assert check(diagnostics.run_checks(), "Sign-up metadata by provider").status == diagnostics.OK


def test_emails_shared_across_identities_and_usernames_from_metadata_collide_on_unique_columns():
    name = "Unique values the sign-up copies"
    assert check(diagnostics.run_checks(), name).status == diagnostics.OK
    # Two identities of one person: an SSO sign-up may share a password sign-up's email.
    shared = make_auth_user("ada@example.com")
    disable_trigger()  # as the live trigger would: it raises for the users below
    make_auth_user("ada@example.com", is_sso_user=True, keep=())
    # An orphaned app user still holds an address a live sign-up now has.
    orphan = uuid.uuid4()
    execute("INSERT INTO public.users (id, email) VALUES (%s, 'grace@example.com')", [orphan])
    make_auth_user("grace@example.com", keep=())
    make_auth_user("linus@example.com")  # no collision

    found = check(diagnostics.run_checks(), name)

    assert found.status == diagnostics.WARNING
    (row,) = found.details["rows"]
    assert row["column"] == "public.users.email" and row["copied from"] == "NEW.email (public.handle_new_user())"
    assert row["users sharing a value"] == 2 and row["users whose value another user's row holds"] == 2
    assert set(row["sample values"].split(", ")) == {"ada@example.com", "grace@example.com"}
    assert "duplicate key value violates unique constraint" in found.found
    assert str(shared) not in str(found.as_dict())

    # A username generated from metadata by the sign-up function collides too.
    execute(
        "CREATE OR REPLACE FUNCTION public.handle_new_user() RETURNS trigger LANGUAGE plpgsql "
        "SECURITY DEFINER SET search_path = '' AS $$ BEGIN "
        "INSERT INTO public.profiles (user_id, username) "
        "VALUES (NEW.id, lower(NEW.raw_user_meta_data->>'username')) ON CONFLICT (user_id) DO NOTHING; "
        "RETURN NEW; END $$"
    )
    make_auth_user(meta={"username": "Linus"}, keep=())
    make_auth_user(meta={"username": "linus"}, keep=())
    found = check(diagnostics.run_checks(), name)
    columns = {r["column"]: r for r in found.details["rows"]}
    assert columns["public.profiles.username"]["users sharing a value"] == 2
    assert columns["public.profiles.username"]["sample values"] == "linus"


def test_a_function_expression_that_is_not_plain_is_named_but_not_evaluated():
    execute(
        "CREATE OR REPLACE FUNCTION public.handle_new_user() RETURNS trigger LANGUAGE plpgsql "
        "SECURITY DEFINER SET search_path = '' AS $$ BEGIN "
        "INSERT INTO public.profiles (user_id, username) "
        "VALUES (NEW.id, public.make_username(NEW.email)) ON CONFLICT (user_id) DO NOTHING; "
        "RETURN NEW; END $$"
    )

    found = check(diagnostics.run_checks(), "Unique values the sign-up copies")

    assert found.status == diagnostics.OK
    assert (
        "Not evaluated here: public.profiles.username = public.make_username(NEW.email) "
        "(public.handle_new_user()): not a plain expression"
    ) in found.found


@pytest.mark.parametrize(
    "expression",
    [
        # A literal to the whitelist, a comment to SQL: must never be evaluated.
        "NEW.email || /*'*/ set_config /*'*/ ('role', 'authenticated', false)",
        "NEW.email || /*'*/ (SELECT max(encrypted_password) FROM auth.users) /*'*/",
        'NEW.email || U&"\\0070\\0069"()',
        "lower(NEW.encrypted_password)",
    ],
)
def test_a_function_expression_that_hides_sql_is_never_evaluated(expression):
    make_auth_user()
    execute(
        "CREATE OR REPLACE FUNCTION public.handle_new_user() RETURNS trigger LANGUAGE plpgsql "
        "SECURITY DEFINER SET search_path = '' AS $fn$ BEGIN "
        f"INSERT INTO public.users (id, email, username) VALUES (NEW.id, NEW.email, {expression}) "
        "ON CONFLICT (id) DO NOTHING; RETURN NEW; END $fn$"
    )

    found = check(diagnostics.run_checks(), "Unique values the sign-up copies")

    assert "not a plain expression" in found.found
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user = session_user")
        assert cursor.fetchone()[0]


def test_metadata_with_a_fallback_key_counts_only_users_with_neither_and_a_check_constraint_is_no_refusal():
    make_auth_user(provider="google", meta={"name": "Grace Hopper"})  # the fallback covers her
    make_auth_user(provider="email", meta={})  # neither key: empty
    execute(
        METADATA_FUNCTION.replace(
            "NEW.raw_user_meta_data->>'full_name'",
            "coalesce(NEW.raw_user_meta_data->>'full_name', NEW.raw_user_meta_data->>'name')",
        )
        + ";ALTER TABLE public.profiles ADD CONSTRAINT avatar_is_https CHECK (avatar_url LIKE 'https://%')"
    )

    found = check(diagnostics.run_checks(), "Sign-up metadata by provider")

    assert found.status == diagnostics.PROBLEM
    assert "comes out empty for 1 of 1 recent email sign-up(s)" in found.found
    assert "google" not in found.found
    assert "avatar_url" not in found.found  # a CHECK accepts NULL


# --- provisioned, yet invisible to the app (issue 15, check 12) --------------------------------

VISIBLE = "Rows the app can read (RLS and grants)"


def test_rows_hidden_by_row_level_security_are_found_and_the_owner_policy_fixes_it():
    assert check(diagnostics.run_checks(), VISIBLE).status == diagnostics.OK
    user_id = make_auth_user()
    # A policy that shows only public profiles (in place of the demo's owner policy), and a
    # column the dashboard leaves at false.
    drop_owner_policy("profiles")
    execute(
        "ALTER TABLE public.profiles ADD COLUMN is_public boolean NOT NULL DEFAULT false;"
        "ALTER TABLE public.profiles ENABLE ROW LEVEL SECURITY;"
        'CREATE POLICY "Public profiles are visible" ON public.profiles FOR SELECT TO authenticated USING (is_public)'
    )
    before = row_counts()

    found = check(diagnostics.run_checks(), VISIBLE)

    assert found.status == diagnostics.WARNING
    assert "1 of 1 sampled users cannot read their own profile in public.profiles" in found.found
    assert (
        '"Public profiles are visible" USING (is_public)' in found.found
        or "Public profiles are visible USING (is_public)" in found.found
    )
    profiles = {r["table"]: r for r in found.details["rows"]}["public.profiles"]
    assert profiles["row level security"] == "on" and profiles["see their own row"] == 0
    view = {t["table"]: t for t in diagnostics.app_view(user_id, None)["tables"]}
    assert view["public.profiles"]["exists"] and view["public.profiles"]["owner"] is False
    assert view["public.wallets"]["owner"] is True and view["public.wallets"]["others"] is False  # owner policy
    assert row_counts() == before  # asked as the app, rolled back

    (statement,) = found.details["statements"]
    assert 'USING ((SELECT auth.uid()) = "user_id")' in statement
    execute(statement)
    assert check(diagnostics.run_checks(), VISIBLE).status == diagnostics.OK
    view = {t["table"]: t for t in diagnostics.app_view(user_id, None)["tables"]}
    assert view["public.profiles"]["owner"] is True and view["public.profiles"]["others"] is False


def test_rls_without_a_policy_and_a_missing_grant_are_found_and_the_fixes_work():
    make_auth_user()
    drop_owner_policy("wallets")
    execute("ALTER TABLE public.wallets ENABLE ROW LEVEL SECURITY; REVOKE SELECT ON public.users FROM authenticated")

    found = check(diagnostics.run_checks(), VISIBLE)

    assert found.status == diagnostics.WARNING
    assert "authenticated has no SELECT grant on public.users" in found.found
    assert "row level security is on and no policy lets authenticated read" in found.found
    for statement in found.details["statements"]:
        execute(statement)
    assert check(diagnostics.run_checks(), VISIBLE).status == diagnostics.OK


def test_detail_page_answers_would_the_app_see_this_user_on_demand(viewer_client):
    user_id = make_auth_user(keep=("users", "profiles"))
    drop_owner_policy("profiles")
    execute(
        "ALTER TABLE public.profiles ENABLE ROW LEVEL SECURITY;"
        'CREATE POLICY "Nobody" ON public.profiles FOR SELECT TO authenticated USING (false)'
    )
    url = reverse("admin:provisioning_authuser_change", args=[user_id])

    assert 'id="app-view-link"' in viewer_client.get(url).content.decode()  # not asked until asked
    html = viewer_client.get(url, {"app_view": "1"}).content.decode()

    section = html[html.index('id="app-visibility"') :]
    assert "<strong>does not see it</strong>" in section
    assert "Nobody USING (false)" in section
    assert "no row to see" in section  # the wallet
    assert count("profiles", [user_id]) == 1


# --- provisioning on confirmation (issue 15, check 10) -----------------------------------------

CONFIRMATION_TRIGGER = (
    # Provisioning on email confirmation, as Supabase's guides suggest for apps that want it.
    "DROP TRIGGER on_auth_user_created ON auth.users;"
    "CREATE TRIGGER on_auth_user_confirmed AFTER UPDATE OF email_confirmed_at ON auth.users FOR EACH ROW "
    "WHEN (OLD.email_confirmed_at IS NULL AND NEW.email_confirmed_at IS NOT NULL) "
    "EXECUTE FUNCTION public.handle_new_user()"
)


@pytest.mark.parametrize(
    "gated_trigger",
    [
        CONFIRMATION_TRIGGER,
        # The same gate as an IF in the function of the ordinary INSERT trigger.
        "CREATE OR REPLACE FUNCTION public.handle_new_user() RETURNS trigger LANGUAGE plpgsql "
        "SECURITY DEFINER SET search_path = '' AS $$ BEGIN "
        "IF NEW.email_confirmed_at IS NULL THEN RETURN NEW; END IF; "
        "INSERT INTO public.users (id, email) VALUES (NEW.id, NEW.email) ON CONFLICT (id) DO NOTHING; "
        "INSERT INTO public.profiles (user_id) VALUES (NEW.id) ON CONFLICT (user_id) DO NOTHING; "
        "INSERT INTO public.wallets (user_id) VALUES (NEW.id) ON CONFLICT (user_id) DO NOTHING; "
        "RETURN NEW; END $$",
        # Or every insert inside IF ... IS NOT NULL THEN ... END IF.
        "CREATE OR REPLACE FUNCTION public.handle_new_user() RETURNS trigger LANGUAGE plpgsql "
        "SECURITY DEFINER SET search_path = '' AS $$ BEGIN "
        "IF NEW.email_confirmed_at IS NOT NULL THEN "
        "INSERT INTO public.users (id, email) VALUES (NEW.id, NEW.email) ON CONFLICT (id) DO NOTHING; "
        "INSERT INTO public.profiles (user_id) VALUES (NEW.id) ON CONFLICT (user_id) DO NOTHING; "
        "INSERT INTO public.wallets (user_id) VALUES (NEW.id) ON CONFLICT (user_id) DO NOTHING; "
        "END IF; RETURN NEW; END $$",
    ],
    ids=["update-trigger", "if-return-in-function", "if-around-the-inserts"],
)
def test_provisioning_on_confirmation_counts_unconfirmed_sign_ups_apart(gated_trigger, viewer_client):
    from provisioning.engine import selectors
    from provisioning.hooks import watchdog
    from provisioning.hooks.metrics import _compute
    from tests.test_web_admin import listed_ids

    name = "Provisioning on confirmation"
    assert "Provisioning runs at sign-up" in check(diagnostics.run_checks(), name).found
    execute(gated_trigger)
    waiting = {make_auth_user(keep=()) for _ in range(2)}  # unconfirmed: no rows yet, as designed
    confirmed_gap = make_auth_user(confirmed=True, keep=())  # confirmed, yet without rows: a real gap

    report = diagnostics.run_checks()

    found = check(report, name)
    assert found.status == diagnostics.OK
    assert (
        "Of the 3 live sign-up(s) missing rows, 2 are unconfirmed and expected to wait; 1 are confirmed" in found.found
    )
    assert check(report, "Sign-up trigger").status == diagnostics.OK
    coverage = check(report, "Sign-ups missing rows")
    assert coverage.status == diagnostics.WARNING and "2 of the 3 users missing rows are unconfirmed" in coverage.found
    counts = selectors.status_counts()
    assert (counts.missing_any, counts.awaiting_confirmation) == (3, 2)
    assert listed_ids(viewer_client, status="awaiting_confirmation") == waiting
    assert listed_ids(viewer_client, status="missing_confirmed") == {confirmed_gap}
    late = watchdog.find_late(grace=0, window=3600)
    assert (late.late, late.awaiting_confirmation) == ([confirmed_gap], 2)
    assert run_command("provisioning_status")[0] == 0
    out = run_command("provisioning_status")[1]
    assert "of which awaiting confirmation: 2 (expected: provisioning waits for email_confirmed_at" in out
    metrics = _compute().decode()
    assert "\neloity_missing_awaiting_confirmation 2.0\n" in metrics and "\neloity_missing_any 3.0\n" in metrics

    # Once the real gap is closed, the unconfirmed ones are no alarm.
    execute("DELETE FROM auth.users WHERE id = %s", [confirmed_gap])
    assert check(diagnostics.run_checks(), "Sign-ups missing rows").status == diagnostics.OK
    assert watchdog.find_late(grace=0, window=3600).count == 0


@pytest.mark.parametrize(
    "not_a_gate",
    [
        # An IF that only marks confirmed users verified, after provisioning everyone.
        "IF NEW.email_confirmed_at IS NOT NULL THEN UPDATE public.users SET is_verified = true WHERE id = NEW.id; "
        "END IF;",
        # A comment that mentions the column.
        "-- if the user confirmed_at later then the app shows a badge\n",
    ],
    ids=["if-after-the-inserts", "comment"],
)
def test_an_if_or_a_comment_about_confirmation_is_no_gate(not_a_gate):
    from provisioning.engine import confirmation

    function = catalog_function_definition()
    execute(function.replace("RETURN NEW;", not_a_gate + " RETURN NEW;", 1))

    assert "RETURN NEW" in function and confirmation.gate() is None


def catalog_function_definition() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_functiondef('public.handle_new_user()'::regprocedure)")
        return cursor.fetchone()[0]


def test_without_a_confirmation_gate_unconfirmed_sign_ups_are_late_and_the_choices_are_not_offered(viewer_client):
    from provisioning.hooks import watchdog

    user_id = make_auth_user(keep=())

    assert watchdog.find_late(grace=0, window=3600).late == [user_id]
    html = viewer_client.get(reverse("admin:provisioning_authuser_changelist")).content.decode()
    assert "awaiting confirmation" not in html


def test_metadata_the_spec_copies_is_checked_too(monkeypatch):
    import dataclasses

    from provisioning.diagnostics import signup_values
    from provisioning.spec import AuthMetadata

    profiles = dataclasses.replace(PROFILES, values={**PROFILES.values, "display_name": AuthMetadata("full_name")})
    monkeypatch.setattr(signup_values, "SPEC", (USERS, profiles, WALLETS))
    execute("ALTER TABLE public.profiles ADD COLUMN display_name text NOT NULL DEFAULT ''")
    make_auth_user(provider="google", meta={"name": "Grace Hopper"})

    found = signup_values.check_signup_metadata()

    assert found.status == diagnostics.PROBLEM
    assert (
        "The spec writes raw_user_meta_data->>'full_name' into public.profiles.display_name (NOT NULL), which comes "
        "out empty for 1 of 1 recent google sign-up(s): they do not send full_name (they send `name` instead), and "
        "provisioning cannot write their row."
    ) in found.found


def test_the_new_checks_reach_the_health_page_and_the_cli(viewer_client):
    """Issue 15's checks 4, 5, 10 and 12 on one broken copy: the page and the doctor agree."""
    make_auth_user(provider="google", meta={"name": "Grace Hopper"})
    execute(METADATA_FUNCTION)
    drop_owner_policy("wallets")
    execute(
        "ALTER TABLE public.wallets ENABLE ROW LEVEL SECURITY;"
        'CREATE POLICY "Nobody" ON public.wallets FOR SELECT TO authenticated USING (false)'
    )

    code, out = doctor("--json")
    body = viewer_client.get(reverse("provisioning-health")).content.decode()

    assert code == 1  # the metadata problem
    statuses = {c["name"]: c["status"] for c in json.loads(out)["checks"]}
    assert statuses["Sign-up metadata by provider"] == "problem"
    assert statuses["Rows the app can read (RLS and grants)"] == "warning"
    assert statuses["Unique values the sign-up copies"] == "ok"
    assert statuses["Provisioning on confirmation"] == "ok"
    for name in (
        "Sign-up metadata by provider",
        "Rows the app can read (RLS and grants)",
        "Provisioning on confirmation",
    ):
        assert name in body
    assert "ALTER COLUMN display_name DROP NOT NULL" in body or "ALTER COLUMN &quot;display_name&quot;" in body
