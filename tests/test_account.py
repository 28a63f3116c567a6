"""The whole account on the user's page (issue 25): sign-in methods, sessions, MFA factors,
the timeline and the summary line, read straight from `auth`; older Auth versions and bad
payloads; secrets never shown."""

from __future__ import annotations

import json
import uuid

import pytest
from django.urls import reverse

from provisioning.models import AuditEvent
from tests.account_rows import SECRET, add_event, add_factor, add_identity, add_session
from tests.factories import execute, make_auth_user

pytestmark = pytest.mark.django_db

NIL = "00000000-0000-0000-0000-000000000000"


def page(client, user_id, **params) -> str:
    response = client.get(reverse("admin:provisioning_authuser_change", args=[user_id]), params)
    assert response.status_code == 200
    return response.content.decode()


def section(html: str, element_id: str) -> str:
    start = html.index(f'id="{element_id}"')
    return html[start : html.index("</div>", start)]


def test_sign_in_methods_list_each_provider_with_its_email_and_link_a_duplicate_account(viewer_client):
    user = make_auth_user("ada@example.com", provider="email")
    add_identity(user, "email", "ada@example.com")
    add_identity(user, "github", "Ada@Work.example", data={"full_name": "Ada L", "user_name": "ada"})
    twin = make_auth_user(None, phone="15550001111", provider="google")
    add_identity(twin, "google", "ada@example.com")

    html = section(page(viewer_client, user), "sign-in-methods")

    assert "GitHub" in html and "ada@work.example" in html and "Ada L" in html
    assert "Another account</strong> signed up with this email through Google" in html
    assert reverse("admin:provisioning_authuser_change", args=[twin]) in html
    # and from the twin's page, back to the first account
    assert "through email" in section(page(viewer_client, twin), "sign-in-methods")


def test_identity_data_shows_only_email_name_and_avatar(viewer_client):
    user = make_auth_user(provider="google")
    add_identity(
        user,
        "google",
        "x@example.com",
        data={
            "name": "Grace",
            "avatar_url": "https://pics.example/g.png",
            "provider_token": SECRET,
            "custom_claims": {"hd": SECRET},
            "phone_verified": SECRET,
        },
    )
    html = page(viewer_client, user)
    assert "Grace" in html
    assert SECRET not in html


def test_sessions_show_agent_ip_assurance_and_end_but_never_tokens(viewer_client):
    user = make_auth_user()
    add_session(user, aal="aal2", secret=SECRET)
    add_session(
        user,
        agent="Mozilla/5.0 (X11; Linux x86_64) Firefox/126.0",
        ip="192.0.2.50",
        not_after="2020-01-01T00:00:00Z",
        secret=SECRET,
    )

    html = page(viewer_client, user)
    sessions = section(html, "sessions")
    assert "iPhone" in sessions and "203.0.113.7" in sessions and "aal2 (with MFA)" in sessions
    assert "192.0.2.50" in sessions and "ended" in sessions
    assert "1 session open" in section(html, "account-summary")
    assert SECRET not in html


def test_mfa_factors_show_type_name_and_status_never_the_secret(viewer_client):
    user = make_auth_user()
    add_factor(user, name="Old phone", status="verified", secret=SECRET)
    add_factor(user, name="New phone", status="unverified", secret=SECRET)

    html = page(viewer_client, user)
    factors = section(html, "mfa-factors")
    assert "Old phone" in factors and "New phone" in factors
    assert "<strong>unverified</strong> (never completed)" in factors
    assert "MFA on" in section(html, "account-summary")
    assert SECRET not in html


def test_secrets_planted_in_every_secret_column_never_reach_the_page(viewer_client):
    user = make_auth_user(secrets=SECRET, provider="email")
    add_identity(user, "email", None, data={"email": "s@example.com", "access_token": SECRET, "refresh_token": SECRET})
    add_session(user, secret=SECRET)
    add_factor(user, secret=SECRET)
    add_event(user, "login", traits={"provider": "email"})
    for params in ({}, {"timeline": "staff"}, {"timeline": "errors"}, {"timeline": "signins"}):
        assert SECRET not in page(viewer_client, user, **params)


def test_timeline_puts_auth_events_in_words_newest_first(viewer_client):
    user = make_auth_user("tl@example.com")
    add_event(user, "user_signedup", traits={"provider": "email"}, ago="5 days")
    add_event(user, "user_confirmation_requested", ago="5 days", traits={"provider": "email"})
    add_event(user, "login", traits={"provider": "google"}, ago="3 days")
    add_event(user, "user_recovery_requested", ago="2 days")
    add_event(user, "user_repeated_signup", traits={"provider": "email"}, ago="1 day")
    add_event(user, "factor_deleted", ago="1 hour", traits={"factor_id": str(uuid.uuid4())})

    html = section(page(viewer_client, user), "timeline")

    order = [
        "factor deleted",
        "signed up again with an existing email",
        "asked for a password reset",
        "signed in with Google",
        "signed up with email",
    ]
    positions = [html.index(words) for words in order]
    assert positions == sorted(positions)


def test_timeline_filters_sign_ins_errors_and_staff_changes(viewer_client, provisioner):
    user = make_auth_user()
    add_event(user, "login", traits={"provider": "email"})
    add_event(user, "user_repeated_signup", traits={"provider": "email"})
    add_event(user, "user_modified", actor=NIL, username="service_role", traits={"user_id": str(user)})

    signins = section(page(viewer_client, user, timeline="signins"), "timeline")
    errors = section(page(viewer_client, user, timeline="errors"), "timeline")
    staff = section(page(viewer_client, user, timeline="staff"), "timeline")

    assert "signed in with email" in signins and "signed up again" not in signins
    assert "signed up again with an existing email" in errors and "signed in" not in errors
    assert "account changed" in staff and "signed in" not in staff


def test_an_admin_api_entry_names_the_staff_member_whose_dashboard_event_matches(viewer_client, provisioner):
    user = make_auth_user()
    AuditEvent.objects.create(
        actor=provisioner,
        actor_username="prov",
        channel="web",
        action=AuditEvent.Action.SYNC_VALUES,
        outcome="succeeded",
        target_user_ids=[user],
    )
    add_event(user, "user_modified", actor=NIL, username="service_role", traits={"user_id": str(user)}, ago="2 seconds")
    add_event(user, "user_deleted", actor=NIL, username="service_role", traits={"user_id": str(user)}, ago="3 hours")

    html = section(page(viewer_client, user, timeline="staff"), "timeline")

    assert "prov (staff, through the admin API)" in html  # matched within seconds
    assert "the admin API (service_role)" in html  # hours apart: nobody named
    assert "Sync values from auth" in html  # the dashboard's own event, merged


def test_timeline_pages_newest_first(viewer_client):
    user = make_auth_user()
    for hour in range(30):
        add_event(user, "token_refreshed", ago=f"{hour} hours")
    first = section(page(viewer_client, user), "timeline")
    second = section(page(viewer_client, user, timeline_page=2), "timeline")
    assert first.count("session refreshed") == 25 and "older" in first
    assert second.count("session refreshed") == 5 and "newer" in second
    assert "No event for this user on this page" in section(page(viewer_client, user, timeline_page="9999"), "timeline")


@pytest.mark.parametrize(
    "raw", ['"just a string"', "[1, 2]", '{"actor_id": "%s"}', '{"action": 5, "actor_id": "%s", "traits": "x"}']
)
def test_a_malformed_payload_is_shown_raw_never_a_500(viewer_client, raw):
    user = make_auth_user()
    payload = raw % user if "%s" in raw else raw.replace("string", f"string {user}").replace("2]", f'2, "{user}"]')
    add_event(user, "", payload=payload)
    html = section(page(viewer_client, user), "timeline")
    assert "as stored" in html


def test_bad_timeline_parameters_are_ignored(viewer_client):
    user = make_auth_user()
    add_event(user, "login", traits={"provider": "email"})
    for params in ({"timeline": "<x>"}, {"timeline_page": "-3"}, {"timeline_page": "abc"}, {"timeline_page": "1e9"}):
        assert "signed in with email" in section(page(viewer_client, user, **params), "timeline")


def test_summary_line_says_unconfirmed_since_when_banned_and_never_signed_in(viewer_client):
    user = make_auth_user("new@example.com")
    execute(
        "UPDATE auth.users SET email_confirmed_at = NULL, confirmation_sent_at = now() - interval '3 days',"
        " banned_until = now() + interval '10 days', last_sign_in_at = NULL WHERE id = %s",
        [user],
    )
    summary = section(page(viewer_client, user), "account-summary")
    assert "Not confirmed" in summary and "confirmation email sent" in summary and "3\xa0days ago" in summary
    assert "Banned until" in summary and "never signed in" in summary
    assert "MFA off" in summary and "0 sessions open" in summary


@pytest.mark.parametrize(
    "table,label", [("identities", "sign-in-methods"), ("sessions", "sessions"), ("mfa_factors", "mfa-factors")]
)
def test_an_older_auth_without_a_table_says_so_for_that_section_alone(viewer_client, table, label):
    user = make_auth_user()
    execute(f"DROP TABLE auth.{table} CASCADE")
    html = page(viewer_client, user)
    assert "not available on this project&#x27;s Auth version" in section(html, label)
    assert 'id="provisioning-status"' in html


def test_an_older_auth_without_audit_entries_or_columns_still_shows_the_page(viewer_client):
    user = make_auth_user()
    add_identity(user, "google", "old@example.com")
    execute(
        "DROP TABLE auth.audit_log_entries; ALTER TABLE auth.identities DROP COLUMN email;"
        " ALTER TABLE auth.sessions DROP COLUMN user_agent, DROP COLUMN aal;"
        " ALTER TABLE auth.mfa_factors DROP COLUMN last_challenged_at"
    )
    html = page(viewer_client, user)
    assert "Auth&#x27;s own events: not available on this project&#x27;s Auth version" in section(html, "timeline")
    assert "old@example.com" in section(html, "sign-in-methods")  # from identity_data instead


def test_search_finds_an_identity_email_when_the_user_email_differs(viewer_client):
    user = make_auth_user(None, phone="15550002222", provider="github")
    add_identity(user, "github", "Octo.Cat@Example.dev")
    other = make_auth_user("someone@example.com")

    response = viewer_client.get(reverse("admin:provisioning_authuser_changelist"), {"q": "octo.cat@example"})
    ids = {str(u.pk) for u in response.context["cl"].result_list}
    assert str(user) in ids and str(other) not in ids
    # a % in the term is a character, not a wildcard
    response = viewer_client.get(reverse("admin:provisioning_authuser_changelist"), {"q": "o%t"})
    assert str(user) not in {str(u.pk) for u in response.context["cl"].result_list}


def test_search_works_on_an_auth_without_identities(viewer_client):
    make_auth_user("plain@example.com")
    execute("DROP TABLE auth.identities CASCADE")
    response = viewer_client.get(reverse("admin:provisioning_authuser_changelist"), {"q": "plain@"})
    assert response.status_code == 200 and len(response.context["cl"].result_list) == 1


def test_the_page_names_no_secret_column_in_its_queries(viewer_client, django_assert_max_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    user = make_auth_user()
    with CaptureQueriesContext(connection) as queries:
        page(viewer_client, user)
    text = json.dumps([q["sql"] for q in queries.captured_queries]).lower()
    for secret in (
        "refresh_token_hmac_key",
        "secret",
        "web_authn_credential",
        "token",
        "otp_code",
        "encrypted_password",
    ):
        assert secret not in text.replace("refresh_tokens", ""), secret


# --- the list: account filters and the providers column (item 6) ---------------------------


def listed(client, **params) -> set[str]:
    response = client.get(reverse("admin:provisioning_authuser_changelist"), params)
    assert response.status_code == 200
    return {str(u.pk) for u in response.context["cl"].result_list}


def test_account_filters_list_exactly_the_right_users(viewer_client):
    confirmed = make_auth_user(confirmed=True, provider="email")
    unconfirmed = make_auth_user(provider="email")
    banned = make_auth_user(confirmed=True)
    with_mfa = make_auth_user(confirmed=True)
    sso = make_auth_user(is_sso_user=True, confirmed=True, provider="sso:0c9a")
    execute("UPDATE auth.users SET banned_until = now() + interval '1 day' WHERE id = %s", [banned])
    execute("UPDATE auth.users SET last_sign_in_at = now() - interval '200 days' WHERE id = %s", [confirmed])
    execute("UPDATE auth.users SET last_sign_in_at = now() WHERE id <> %s", [confirmed])
    execute("UPDATE auth.users SET last_sign_in_at = NULL WHERE id = %s", [unconfirmed])
    add_factor(with_mfa, status="verified")
    add_factor(banned, status="unverified")

    assert listed(viewer_client, account="unconfirmed") == {str(unconfirmed)}
    assert str(unconfirmed) not in listed(viewer_client, account="confirmed")
    assert listed(viewer_client, account="banned") == {str(banned)}
    assert listed(viewer_client, account="mfa") == {str(with_mfa)}
    assert listed(viewer_client, account="never_signed_in") == {str(unconfirmed)}
    assert listed(viewer_client, account="inactive_90") == {str(confirmed)}
    assert listed(viewer_client, account="sso") == {str(sso)}
    assert listed(viewer_client, provider="sso") == {str(sso)}


def test_provider_filter_and_column_use_the_providers_auth_keeps(viewer_client):
    google = make_auth_user(provider="email")
    execute(
        'UPDATE auth.users SET raw_app_meta_data = \'{"provider": "email", "providers": ["email", "google"]}\''
        " WHERE id = %s",
        [google],
    )
    plain = make_auth_user(provider="email")

    assert listed(viewer_client, provider="google") == {str(google)}
    assert listed(viewer_client, provider="email") >= {str(google), str(plain)}
    html = viewer_client.get(reverse("admin:provisioning_authuser_changelist")).content.decode()
    assert "Email<br>Google" in html


def test_an_unknown_account_filter_value_is_said_and_ignored(viewer_client):
    user = make_auth_user()
    response = viewer_client.get(reverse("admin:provisioning_authuser_changelist"), {"account": "<nope>"})
    assert response.status_code == 200
    assert str(user) in {str(u.pk) for u in response.context["cl"].result_list}
    assert "is not a choice" in response.content.decode()


def test_has_mfa_on_an_auth_without_factors_is_said_not_a_500(viewer_client):
    make_auth_user()
    execute("DROP TABLE auth.mfa_factors CASCADE")
    response = viewer_client.get(reverse("admin:provisioning_authuser_changelist"), {"account": "mfa"})
    assert response.status_code == 200
    assert "not available on this project" in response.content.decode()
