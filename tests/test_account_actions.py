"""Fixing the account through Supabase Auth (issue 26): each action against the stand-in,
with its one audit event, its permission and its refusal paths; the key never shown."""

from __future__ import annotations

import uuid

import pytest

from provisioning.account_actions import services
from provisioning.account_actions.client import AccountActionFailed
from provisioning.actors import Actor
from provisioning.models import AuditEvent
from tests.account_rows import add_factor, add_session
from tests.auth_standin import ANON_KEY, SERVICE_KEY, AuthStandIn, auth_standin  # noqa: F401
from tests.factories import count, execute, make_auth_user

Action = AuditEvent.Action
CLI = Actor.command_line()


def auth_row(user_id) -> dict | None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT email, email_confirmed_at, banned_until, deleted_at, confirmation_sent_at, recovery_sent_at"
            " FROM auth.users WHERE id = %s",
            [user_id],
        )
        row = cursor.fetchone()
    keys = ("email", "email_confirmed_at", "banned_until", "deleted_at", "confirmation_sent_at", "recovery_sent_at")
    return dict(zip(keys, row, strict=True)) if row else None


def sessions(user_id) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM auth.sessions WHERE user_id = %s", [user_id])
        return cursor.fetchone()[0]


def refresh_tokens(user_id) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM auth.refresh_tokens WHERE user_id = %s", [str(user_id)])
        return cursor.fetchone()[0]


def factors(user_id) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM auth.mfa_factors WHERE user_id = %s", [user_id])
        return cursor.fetchone()[0]


def only_event(action) -> AuditEvent:
    events = list(AuditEvent.objects.filter(action=action))
    assert len(events) == 1, events
    return events[0]


def no_key_in(*texts) -> None:
    for text in texts:
        assert SERVICE_KEY not in str(text) and ANON_KEY not in str(text)
        assert SERVICE_KEY[:24] not in str(text)


# --- each action, and its event -------------------------------------------------------------


def test_confirm_email_sets_email_confirmed_at_and_records_reason_request_and_answer(auth_standin):  # noqa: F811
    user = make_auth_user("ada@example.com")
    assert auth_row(user)["email_confirmed_at"] is None

    result = services.confirm_email(actor=CLI, user_id=user, reason="ticket 41: never got the mail")

    assert auth_row(user)["email_confirmed_at"] is not None
    event = only_event(Action.ACCOUNT_CONFIRM)
    assert event.outcome == AuditEvent.Outcome.SUCCEEDED and event.target_user_ids == [user]
    assert event.detail["reason"] == "ticket 41: never got the mail"
    assert event.detail["requests"] == [
        {"method": "PUT", "path": f"/admin/users/{user}", "body": {"email_confirm": True}}
    ]
    assert event.detail["answers"][0]["status"] == 200
    assert result.audit_event_id == event.pk
    no_key_in(event.detail)


def test_resend_confirmation_emails_the_user_through_resend(auth_standin):  # noqa: F811
    user = make_auth_user("bo@example.com")

    services.resend_confirmation(actor=CLI, user_id=user, reason="asked on chat")

    assert auth_standin.emails == [("signup", "bo@example.com")]
    assert auth_row(user)["confirmation_sent_at"] is not None
    assert only_event(Action.ACCOUNT_RESEND).outcome == "succeeded"


def test_password_reset_goes_to_the_user_and_no_link_is_returned_or_recorded(auth_standin):  # noqa: F811
    user = make_auth_user("cy@example.com")

    result = services.send_password_reset(actor=CLI, user_id=user, reason="locked out")

    assert auth_standin.emails == [("recovery", "cy@example.com")]
    assert auth_row(user)["recovery_sent_at"] is not None
    event = only_event(Action.ACCOUNT_RESET_PASSWORD)
    text = str(event.detail) + result.summary
    assert "http" not in text and "token" not in text.lower()


def test_ban_sets_banned_until_signs_out_everywhere_and_says_how_long_tokens_live(auth_standin, settings):  # noqa: F811
    settings.JWT_EXPIRY_SECONDS = 1800
    user = make_auth_user()
    add_session(user)
    add_session(user)

    result = services.ban_user(actor=CLI, user_id=user, reason="fraud report 7", duration="7d")

    row = auth_row(user)
    assert row["banned_until"] is not None
    from django.utils import timezone

    left = row["banned_until"] - timezone.now()
    assert 6.9 < left.total_seconds() / 86400 < 7.1
    assert sessions(user) == 0
    assert "30 min" in result.summary and "2 session(s)" in result.summary
    event = only_event(Action.ACCOUNT_BAN)
    assert event.detail["requests"][0]["body"] == {"ban_duration": "168h"}
    assert event.detail["answers"][1] == {"sessions_ended": 2}
    assert event.detail["access_token_seconds"] == 1800


def test_unban_clears_banned_until(auth_standin):  # noqa: F811
    user = make_auth_user()
    execute("UPDATE auth.users SET banned_until = now() + interval '1 day' WHERE id = %s", [user])

    services.unban_user(actor=CLI, user_id=user, reason="appeal accepted")

    assert auth_row(user)["banned_until"] is None
    assert only_event(Action.ACCOUNT_UNBAN).detail["requests"][0]["body"] == {"ban_duration": "none"}


def test_sign_out_everywhere_deletes_sessions_and_their_refresh_tokens_without_the_api(auth_standin, settings):  # noqa: F811
    settings.SUPABASE_URL = ""  # not needed: SQL only
    user = make_auth_user()
    other = make_auth_user()
    add_session(user)
    add_session(other)

    services.sign_out_everywhere(actor=CLI, user_id=user, reason="lost phone")

    assert sessions(user) == 0 and sessions(other) == 1
    assert refresh_tokens(user) == 0 and refresh_tokens(other) == 1
    assert auth_standin.requests == []
    assert only_event(Action.ACCOUNT_SIGNOUT).detail["answers"] == [{"sessions_ended": 1}]


def test_remove_one_factor_or_all(auth_standin):  # noqa: F811
    user = make_auth_user()
    first = add_factor(user, name="old phone")
    add_factor(user, name="yubikey", kind="webauthn")

    services.remove_mfa_factor(actor=CLI, user_id=user, reason="lost phone", factor_id=first)
    assert factors(user) == 1
    services.remove_mfa_factor(actor=CLI, user_id=user, reason="lost everything", every=True)
    assert factors(user) == 0
    events = AuditEvent.objects.filter(action=Action.ACCOUNT_REMOVE_MFA).order_by("id")
    assert [len(e.detail["removed_factors"]) for e in events] == [1, 1]
    assert "secret" not in str(events[0].detail).lower()


def test_hard_delete_removes_app_rows_children_first_then_the_auth_user_and_keeps_rows_in_the_event(auth_standin):  # noqa: F811
    user = make_auth_user("gone@example.com")
    assert count("profiles", [user]) == 1 and count("wallets", [user]) == 1

    result = services.delete_user(actor=CLI, user_id=user, reason="GDPR erasure request 12")

    assert auth_row(user) is None
    assert count("users", [user]) + count("profiles", [user]) + count("wallets", [user]) == 0
    event = only_event(Action.ACCOUNT_DELETE)
    assert event.outcome == "succeeded"
    removed = event.detail["removed"]
    assert set(removed) == {"public.users", "public.profiles", "public.wallets"}
    assert "backup_seed" in event.detail["withheld_columns"]["public.wallets"]
    assert all("backup_seed" not in row for row in removed["public.wallets"])
    assert "3 app row(s)" in result.summary


def test_soft_delete_keeps_the_auth_row_marked_deleted(auth_standin):  # noqa: F811
    user = make_auth_user("soft@example.com")
    add_session(user)

    services.delete_user(actor=CLI, user_id=user, reason="duplicate account", soft=True)

    row = auth_row(user)
    assert row["deleted_at"] is not None and row["email"] != "soft@example.com"
    assert sessions(user) == 0
    assert count("users", [user]) == 0
    assert only_event(Action.ACCOUNT_DELETE).detail["requests"][0]["body"] == {"should_soft_delete": True}


# --- refusals and failures -----------------------------------------------------------------


def test_a_reason_is_required(auth_standin):  # noqa: F811
    user = make_auth_user()
    with pytest.raises(ValueError, match="reason"):
        services.confirm_email(actor=CLI, user_id=user, reason="  ")
    assert auth_standin.requests == []


@pytest.mark.parametrize(
    ("setup", "kind", "words"),
    [
        (lambda s: s.refuse(422, "Unable to validate email address"), "refused", "422"),
        (lambda s: s.rate_limit(), "rate_limited", "rate limit"),
        (lambda s: s.refuse(404, "User not found"), "gone", "no such user"),
        (lambda s: s.time_out(3), "timeout", "did not answer"),
    ],
)
def test_api_errors_are_one_clear_message_and_a_failed_event_and_nothing_changes(auth_standin, setup, kind, words):  # noqa: F811
    user = make_auth_user()
    setup(auth_standin)
    with pytest.raises(AccountActionFailed) as caught:
        services.resend_confirmation(actor=CLI, user_id=user, reason="r")
    assert caught.value.kind == kind and words in str(caught.value)
    event = only_event(Action.ACCOUNT_RESEND)
    assert event.outcome == "failed" and event.pk == caught.value.audit_event_id
    assert auth_row(user)["confirmation_sent_at"] is None


def test_an_idempotent_call_is_retried_once_after_a_timeout(auth_standin):  # noqa: F811
    user = make_auth_user()
    auth_standin.time_out(3)

    services.confirm_email(actor=CLI, user_id=user, reason="retry me")

    assert auth_row(user)["email_confirmed_at"] is not None
    assert [r["method"] for r in auth_standin.requests] == ["PUT", "PUT"]


def test_an_email_is_not_retried(auth_standin):  # noqa: F811
    user = make_auth_user()
    auth_standin.time_out(3)
    with pytest.raises(AccountActionFailed):
        services.send_password_reset(actor=CLI, user_id=user, reason="r")
    assert len(auth_standin.requests) == 1


def test_a_mistyped_key_is_named_and_never_shown(auth_standin, settings):  # noqa: F811
    settings.SUPABASE_SERVICE_ROLE_KEY = "wrong-" + SERVICE_KEY
    user = make_auth_user()
    with pytest.raises(AccountActionFailed) as caught:
        services.unban_user(actor=CLI, user_id=user, reason="r")
    assert caught.value.kind == "key" and "SUPABASE_SERVICE_ROLE_KEY" in str(caught.value)
    no_key_in(caught.value, only_event(Action.ACCOUNT_UNBAN).detail)


def test_an_answer_echoing_the_headers_never_puts_the_key_in_the_message_or_event(auth_standin):  # noqa: F811
    user = make_auth_user()
    auth_standin.echo_headers()
    with pytest.raises(AccountActionFailed) as caught:
        services.confirm_email(actor=CLI, user_id=user, reason="r")
    event = only_event(Action.ACCOUNT_CONFIRM)
    assert "[key withheld]" in event.detail["answers"][0]["message"]
    no_key_in(caught.value, event.detail)


def test_the_api_unreachable(auth_standin, settings):  # noqa: F811
    settings.SUPABASE_URL = "http://127.0.0.1:9"  # discard port: refused
    user = make_auth_user()
    with pytest.raises(AccountActionFailed) as caught:
        services.confirm_email(actor=CLI, user_id=user, reason="r")
    assert caught.value.kind == "network" and "could not be reached" in str(caught.value)
    assert only_event(Action.ACCOUNT_CONFIRM).outcome == "failed"


def test_without_the_settings_the_action_is_unavailable_and_nothing_is_sent(auth_standin, settings):  # noqa: F811
    settings.SUPABASE_SERVICE_ROLE_KEY = ""
    user = make_auth_user()
    with pytest.raises(AccountActionFailed) as caught:
        services.ban_user(actor=CLI, user_id=user, reason="r", duration="1h")
    assert caught.value.kind == "unavailable" and "SUPABASE_SERVICE_ROLE_KEY" in str(caught.value)
    assert auth_standin.requests == []


def test_a_user_deleted_by_someone_else_meanwhile(auth_standin):  # noqa: F811
    user = make_auth_user()
    execute("DELETE FROM auth.users WHERE id = %s", [user])
    with pytest.raises(AccountActionFailed) as caught:
        services.ban_user(actor=CLI, user_id=user, reason="r", duration="1h")
    assert caught.value.kind == "gone"
    assert auth_standin.requests == []
    assert only_event(Action.ACCOUNT_BAN).outcome == "failed"


def test_delete_refused_by_the_api_puts_the_app_rows_back_and_the_event_says_so(auth_standin):  # noqa: F811
    user = make_auth_user("keep@example.com")
    before = {t: count(t, [user]) for t in ("users", "profiles", "wallets")}
    wallet = _wallet_seed(user)
    auth_standin.refuse(500, "Database error deleting user")

    with pytest.raises(AccountActionFailed) as caught:
        services.delete_user(actor=CLI, user_id=user, reason="erasure")

    assert "put back" in str(caught.value)
    assert {t: count(t, [user]) for t in before} == before
    assert _wallet_seed(user) == wallet  # secrets included: rows come back whole
    assert auth_row(user) is not None
    event = only_event(Action.ACCOUNT_DELETE)
    assert event.outcome == "failed" and event.detail["app_rows"] == "put back"
    assert set(event.detail["removed"]) == {f"public.{t}" for t in before}


def test_delete_that_times_out_puts_the_rows_back_when_the_user_is_still_there(auth_standin):  # noqa: F811
    user = make_auth_user()
    auth_standin.time_out(3)
    with pytest.raises(AccountActionFailed) as caught:
        services.delete_user(actor=CLI, user_id=user, reason="erasure")
    assert caught.value.kind == "timeout"
    assert count("users", [user]) == 1 and count("wallets", [user]) == 1
    assert len(auth_standin.requests) == 1  # a delete is not retried


def test_delete_that_times_out_after_auth_did_it_is_a_success(auth_standin):  # noqa: F811
    user = make_auth_user()
    auth_standin.time_out(2, apply=True)
    services.delete_user(actor=CLI, user_id=user, reason="erasure")
    assert auth_row(user) is None and count("users", [user]) == 0
    assert only_event(Action.ACCOUNT_DELETE).outcome == "succeeded"


def test_delete_does_not_hold_locks_auth_needs_an_app_key_to_auth_users_with_cascade(auth_standin):  # noqa: F811
    """Auth's DELETE of auth.users cascades into public.wallets: were the app rows deleted
    in a transaction still open during the call, Auth would wait on it (the stand-in gives
    up after lock_timeout, 5 s, and answers 500)."""
    execute(
        "ALTER TABLE public.wallets ADD CONSTRAINT test_wallets_auth_user"
        " FOREIGN KEY (user_id) REFERENCES auth.users (id) ON DELETE CASCADE"
    )
    try:
        user = make_auth_user()
        services.delete_user(actor=CLI, user_id=user, reason="erasure")
        assert auth_row(user) is None and count("wallets", [user]) == 0
    finally:
        execute("ALTER TABLE public.wallets DROP CONSTRAINT test_wallets_auth_user")


def _wallet_seed(user_id):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("UPDATE public.wallets SET backup_seed = 'SEED-1' WHERE user_id = %s", [user_id])
        cursor.execute("SELECT backup_seed, created_at FROM public.wallets WHERE user_id = %s", [user_id])
        return cursor.fetchone()


# --- the stand-in itself -------------------------------------------------------------------


def test_the_standin_rejects_an_unknown_field_and_a_wrong_method(db):
    import httpx

    standin = AuthStandIn().start()
    try:
        headers = {"apikey": SERVICE_KEY, "Authorization": f"Bearer {SERVICE_KEY}"}
        user = str(uuid.uuid4())
        unknown = httpx.put(f"{standin.url}/auth/v1/admin/users/{user}", json={"banned": True}, headers=headers)
        method = httpx.post(f"{standin.url}/auth/v1/admin/users/{user}", json={}, headers=headers)
        wrong_type = httpx.put(
            f"{standin.url}/auth/v1/admin/users/{user}", json={"email_confirm": "yes"}, headers=headers
        )
        no_email = httpx.post(f"{standin.url}/auth/v1/recover", json={}, headers={"apikey": ANON_KEY})
    finally:
        standin.stop()
    assert (unknown.status_code, method.status_code, wrong_type.status_code, no_email.status_code) == (
        400,
        405,
        400,
        400,
    )
    assert len(standin.malformed) == 4


# --- the system check ---------------------------------------------------------------------


def test_check_warns_with_debug_off_when_the_settings_are_missing(settings):
    from provisioning.account_actions.checks import account_actions_check

    settings.DEBUG = False
    settings.SUPABASE_URL = "https://x.supabase.co"
    settings.SUPABASE_SERVICE_ROLE_KEY = ""
    settings.SUPABASE_ANON_KEY = ""
    ids = [m.id for m in account_actions_check()]
    assert ids == ["provisioning.W020", "provisioning.W021"]
    assert "SUPABASE_SERVICE_ROLE_KEY" in account_actions_check()[0].msg
    settings.SUPABASE_SERVICE_ROLE_KEY = "k"
    settings.SUPABASE_ANON_KEY = "a"
    assert account_actions_check() == []
    settings.SUPABASE_SERVICE_ROLE_KEY = ""
    settings.DEBUG = True
    assert account_actions_check() == []


@pytest.mark.django_db
def test_sign_out_everywhere_works_under_the_readme_grants_and_only_deletes_sessions():
    from tests.test_engine_least_privilege import GRANTS, ROLE

    user = make_auth_user()
    add_session(user)
    execute(GRANTS)
    execute(f"SET LOCAL ROLE {ROLE}")
    result = services.sign_out_everywhere(actor=CLI, user_id=user, reason="least privilege")
    execute("RESET ROLE")
    assert sessions(user) == 0 and refresh_tokens(user) == 0
    assert result.audit_event_id
