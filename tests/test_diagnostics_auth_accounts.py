"""The doctor's two questions about Supabase Auth's own tables (issue 25, items 8 and 9):
auth events not written to the database (and the timeline saying so), and duplicate
accounts (one email, several sign-ups) with the list filter behind the number."""

from __future__ import annotations

import json

import pytest
from django.core.cache import cache
from django.test import override_settings
from django.urls import reverse

from provisioning import diagnostics
from tests.account_rows import add_event, add_identity
from tests.factories import execute, make_auth_user, run_command

pytestmark = pytest.mark.django_db

AUDIT = "Auth events written to the database"
DUPLICATES = "Accounts sharing an email"


def check(name: str) -> diagnostics.Check:
    return next(c for c in diagnostics.run_checks().checks if c.name == name)


def listed(client, **params) -> set[str]:
    response = client.get(reverse("admin:provisioning_authuser_changelist"), params)
    assert response.status_code == 200
    return {str(u.pk) for u in response.context["cl"].result_list}


def signed_in(user_id, ago: str = "1 hour") -> None:
    execute("UPDATE auth.users SET last_sign_in_at = now() - %s::interval WHERE id = %s", [ago, user_id])


# --- item 8: auth events not written to the database ---------------------------------------


def test_audit_log_is_ok_when_sign_ins_have_entries():
    user = make_auth_user()
    signed_in(user)
    add_event(user, "login", traits={"provider": "email"})
    assert check(AUDIT).status == diagnostics.OK


def test_sign_ins_without_any_recent_entry_are_a_warning_naming_the_setting():
    user = make_auth_user()
    signed_in(user)
    add_event(user, "login", ago="40 days")  # the log stopped 40 days ago

    found = check(AUDIT)

    assert found.status == diagnostics.WARNING
    assert "Auth events are not written to the database: 1 user signed in" in found.found
    assert "Log auth events to the database" in found.advice
    assert "GOTRUE_AUDIT_LOG_DISABLE_POSTGRES" in found.advice
    assert found.details["since"] is not None


def test_sign_ups_by_sql_alone_are_not_taken_for_a_silent_log():
    make_auth_user()  # inserted by SQL: never in the log, never signed in
    assert check(AUDIT).status == diagnostics.OK


def test_a_missing_audit_table_is_not_checked_never_a_500(viewer_client):
    signed_in(make_auth_user())
    execute("DROP TABLE auth.audit_log_entries")
    found = check(AUDIT)
    assert found.status == diagnostics.OK and "not checked" in found.found
    assert viewer_client.get(reverse("provisioning-health")).status_code == 200


def test_the_timeline_says_the_events_are_not_written_instead_of_looking_empty(viewer_client):
    user = make_auth_user()
    signed_in(user)
    add_event(user, "login", ago="40 days")
    execute("DELETE FROM auth.audit_log_entries")

    html = viewer_client.get(reverse("admin:provisioning_authuser_change", args=[user])).content.decode()

    start = html.index('id="timeline"')
    timeline = html[start : html.index("</div>", start)]
    assert "The auth server does not write its events to the database on this project (no entry at all)" in timeline
    assert "the timeline shows only the dashboard&#x27;s own events" in timeline


def test_the_timeline_says_nothing_of_the_kind_when_the_log_is_written(viewer_client):
    user = make_auth_user()
    other = make_auth_user()
    signed_in(other)
    add_event(other, "login")
    html = viewer_client.get(reverse("admin:provisioning_authuser_change", args=[user])).content.decode()
    assert "does not write its events" not in html


# --- item 9: accounts sharing an email ------------------------------------------------------


def test_no_shared_email_is_ok():
    a = make_auth_user("ada@example.com", provider="email")
    add_identity(a, "email", "ada@example.com")
    add_identity(a, "google", "ada@example.com")  # one user, two providers: not a duplicate
    make_auth_user("bob@example.com")
    assert check(DUPLICATES).status == diagnostics.OK


def test_shared_emails_are_counted_once_per_user_and_the_list_shows_exactly_them(viewer_client):
    ada = make_auth_user("Ada@Example.com", provider="email")
    add_identity(ada, "email", "ada@example.com")
    ada_google = make_auth_user(None, phone="15550001111", provider="google")
    add_identity(ada_google, "google", "ADA@example.com")
    ada_github = make_auth_user("ada@example.com", provider="github")  # users.email alone
    bob = make_auth_user("bob@example.com", provider="email")
    bob_twin = make_auth_user("BOB@example.com", provider="google")
    make_auth_user("aDa@example.com", deleted=True)  # soft-deleted: not counted
    make_auth_user("carol@example.com")

    found = check(DUPLICATES)

    assert found.status == diagnostics.WARNING
    assert found.details["users"] == 5 and found.details["emails"] == 2
    assert found.found.startswith("5 live users share 2 emails with another account")
    url = found.details["link"]["url"]
    assert url == reverse("admin:provisioning_authuser_changelist") + "?account=duplicate_email"
    rows = listed(viewer_client, account="duplicate_email")
    assert rows == {str(u) for u in (ada, ada_google, ada_github, bob, bob_twin)}
    assert len(rows) == found.details["users"]


def test_the_health_page_links_the_number_to_the_list(viewer_client):
    make_auth_user("dup@example.com")
    make_auth_user("DUP@example.com")
    html = viewer_client.get(reverse("provisioning-health")).content.decode()
    assert 'href="/admin/provisioning/authuser/?account=duplicate_email">List the 2 users</a>' in html


def test_the_duplicate_filter_is_one_query_for_the_page(viewer_client, django_assert_max_num_queries):
    for n in range(30):
        make_auth_user(f"twin{n}@example.com")
        make_auth_user(f"TWIN{n}@example.com")
    make_auth_user("single@example.com")
    with django_assert_max_num_queries(40) as captured:
        response = viewer_client.get(reverse("admin:provisioning_authuser_changelist"), {"account": "duplicate_email"})
    assert response.context["cl"].result_count == 60  # the one user with an email of its own is left out
    assert sum("auth.identities" in q["sql"] for q in captured.captured_queries) <= 3


def test_a_missing_identities_table_is_not_checked_and_the_filter_says_so(viewer_client):
    make_auth_user("dup@example.com")
    make_auth_user("DUP@example.com")
    execute("DROP TABLE auth.identities CASCADE")
    found = check(DUPLICATES)
    assert found.status == diagnostics.OK and "not checked" in found.found
    response = viewer_client.get(reverse("admin:provisioning_authuser_changelist"), {"account": "duplicate_email"})
    assert response.status_code == 200
    assert "not available on this project" in response.content.decode()
    assert viewer_client.get(reverse("provisioning-health")).status_code == 200


def test_both_checks_reach_the_json_report_and_metrics(client):
    user = make_auth_user("dup@example.com")
    make_auth_user("DUP@example.com")
    signed_in(user)

    _, out = run_command("provisioning_doctor", "--json")  # warnings only: exit 0
    statuses = {c["name"]: c["status"] for c in json.loads(out)["checks"]}
    assert statuses[AUDIT] == "warning" and statuses[DUPLICATES] == "warning"

    token = "metrics-token-for-tests-0123456789"
    cache.clear()
    with override_settings(METRICS_TOKEN=token):
        text = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}").content.decode()
    cache.clear()
    assert f'eloity_doctor_check_status{{check="{AUDIT}"}} 1.0' in text
    assert f'eloity_doctor_check_status{{check="{DUPLICATES}"}} 1.0' in text


def test_on_the_demo_the_log_is_written_and_its_duplicate_accounts_are_the_lists_rows(viewer_client):
    from provisioning import demo

    demo.seed(300)

    assert check(AUDIT).status == diagnostics.OK
    found = check(DUPLICATES)
    assert found.status == diagnostics.WARNING  # the demo has a few users with two accounts
    response = viewer_client.get(reverse("admin:provisioning_authuser_changelist"), {"account": "duplicate_email"})
    assert response.context["cl"].result_count == found.details["users"] > 0


def test_an_older_auth_without_deleted_at_or_is_anonymous_still_counts_duplicates(viewer_client):
    make_auth_user("old@example.com")
    make_auth_user("OLD@example.com")
    execute("ALTER TABLE auth.users DROP COLUMN is_anonymous CASCADE, DROP COLUMN deleted_at CASCADE")
    found = check(DUPLICATES)
    assert found.status == diagnostics.WARNING and found.details["users"] == 2
    assert check(AUDIT).status == diagnostics.OK
