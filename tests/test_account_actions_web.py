"""The user's page: the "Account actions" section, each action from its form against the
Auth stand-in, one message per outcome; the permission (viewers and provisioners get none,
a forged POST is 403 and audited); the key never on the page."""

from __future__ import annotations

import pytest
from django.urls import reverse

from provisioning.models import AuditEvent
from tests.account_rows import add_factor, add_session
from tests.auth_standin import ANON_KEY, SERVICE_KEY, auth_standin  # noqa: F401
from tests.factories import count, execute, make_auth_user
from tests.test_account_actions import auth_row, factors, sessions

Action = AuditEvent.Action
ACTIONS = ["confirm", "resend", "reset-password", "ban", "unban", "signout", "remove-mfa", "delete"]


@pytest.fixture
def account_admin(support_groups, django_user_model):
    from django.contrib.auth.models import Group

    user = django_user_model.objects.create_user("fixer", password="fixer-password", is_staff=True)
    user.groups.add(Group.objects.get(name="Support account admins"))
    return user


@pytest.fixture
def admin_client(client, account_admin):
    client.force_login(account_admin)
    return client


def user_page(client, user_id) -> str:
    response = client.get(reverse("admin:provisioning_authuser_change", args=[user_id]))
    assert response.status_code == 200
    return response.content.decode()


def post(client, user_id, name, **data):
    url = reverse("admin:provisioning_authuser_account_action", args=[user_id, name])
    return client.post(url, data, follow=True)


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_the_group_holds_the_permissions_and_the_other_groups_none(account_admin, viewer, provisioner):
    codes = ["account_confirm", "account_resend", "account_reset_password", "account_ban"]
    codes += ["account_signout", "account_remove_mfa", "account_delete"]
    for code in codes:
        assert account_admin.has_perm(f"provisioning.{code}")
        assert not viewer.has_perm(f"provisioning.{code}") and not provisioner.has_perm(f"provisioning.{code}")


def test_every_action_from_the_page(auth_standin, admin_client, settings):  # noqa: F811
    settings.APPROVALS = False  # the action itself; with approvals on it is a request (test_approvals_account.py)
    user = make_auth_user("page@example.com")
    add_session(user)
    factor = add_factor(user, name="old phone")
    html = user_page(admin_client, user)
    for name in ACTIONS:
        assert f'id="account-{name}"' in html

    steps = [
        ("resend", {}, "Confirmation email sent again"),
        ("reset-password", {}, "Password-reset email sent"),
        ("confirm", {}, "confirmed"),
        ("ban", {"duration": "7d"}, "Banned until"),
        ("unban", {}, "no longer banned"),
        ("signout", {}, "Signed out of"),
        ("remove-mfa", {"factor": str(factor)}, "Removed 1 MFA factor"),
    ]
    for name, extra, words in steps:
        response = post(admin_client, user, name, reason=f"ticket {name}", **extra)
        assert response.status_code == 200
        shown = messages_of(response)
        assert len(shown) == 1 and words in shown[0], (name, shown)

    assert auth_row(user)["email_confirmed_at"] and auth_row(user)["banned_until"] is None
    assert sessions(user) == 0 and factors(user) == 0
    events = AuditEvent.objects.filter(target_user_ids__contains=[user]).order_by("id")
    assert len(events) == 7 and all(e.actor_username == "fixer" and e.channel == "web" for e in events)

    response = post(admin_client, user, "delete", reason="erasure", mode="hard")
    assert response.request["PATH_INFO"] == reverse("admin:provisioning_authuser_changelist")
    assert auth_row(user) is None and count("users", [user]) == 0


def test_a_reason_is_required_on_the_page(auth_standin, admin_client):  # noqa: F811
    user = make_auth_user()
    response = post(admin_client, user, "confirm", reason="  ")
    assert messages_of(response) == ["A reason is required."]
    assert auth_standin.requests == [] and auth_row(user)["email_confirmed_at"] is None


@pytest.mark.parametrize("who", ["viewer", "provisioner"])
def test_viewers_and_provisioners_see_no_actions_and_a_forged_post_is_403_and_audited(
    auth_standin,  # noqa: F811
    client,
    request,
    who,
):
    staff = request.getfixturevalue(who)
    client.force_login(staff)
    user = make_auth_user()
    assert 'id="account-actions"' not in user_page(client, user)
    for name in ACTIONS:
        response = client.post(
            reverse("admin:provisioning_authuser_account_action", args=[user, name]),
            {"reason": "forged", "duration": "1h", "factor": "all", "mode": "hard"},
        )
        assert response.status_code == 403, name
    denied = AuditEvent.objects.filter(outcome="denied", actor_username=staff.username).order_by("id")
    assert [e.detail["form"] for e in denied] == ACTIONS
    assert all(e.target_user_ids == [user] for e in denied)
    assert auth_standin.requests == [] and auth_row(user) is not None


def test_without_the_settings_the_actions_say_why_they_are_unavailable(auth_standin, admin_client, settings):  # noqa: F811
    settings.SUPABASE_SERVICE_ROLE_KEY = ""
    settings.SUPABASE_ANON_KEY = ""
    user = make_auth_user()
    html = user_page(admin_client, user)
    assert 'id="account-ban-unavailable"' in html and "SUPABASE_SERVICE_ROLE_KEY" in html
    assert 'id="account-resend-unavailable"' in html and "SUPABASE_ANON_KEY" in html
    assert 'id="account-signout-unavailable"' not in html  # SQL only


def test_the_key_is_never_on_the_page_even_when_auth_echoes_it(auth_standin, admin_client):  # noqa: F811
    user = make_auth_user()
    auth_standin.echo_headers()
    response = post(admin_client, user, "ban", reason="r", duration="1h")
    page = response.content.decode()
    assert "SUPABASE_SERVICE_ROLE_KEY" in page
    assert SERVICE_KEY not in page and ANON_KEY not in page
    event = AuditEvent.objects.get(action=Action.ACCOUNT_BAN)
    assert SERVICE_KEY not in str(event.detail)


def test_a_user_deleted_by_someone_else_between_the_page_and_the_click(auth_standin, admin_client):  # noqa: F811
    user = make_auth_user()
    user_page(admin_client, user)
    execute("DELETE FROM auth.users WHERE id = %s", [user])
    response = post(admin_client, user, "ban", reason="r", duration="1h")
    assert response.request["PATH_INFO"] == reverse("admin:provisioning_authuser_changelist")
    assert ["This user no longer exists in auth.users (deleted meanwhile?)."] == messages_of(response)
    assert auth_standin.requests == []


def test_delete_refused_by_auth_on_the_page_keeps_the_rows(auth_standin, admin_client, settings):  # noqa: F811
    settings.APPROVALS = False  # the action itself; with approvals on it is a request (test_approvals_account.py)
    user = make_auth_user()
    auth_standin.refuse(500, "Database error deleting user")
    response = post(admin_client, user, "delete", reason="erasure", mode="hard")
    (shown,) = messages_of(response)
    assert "put back" in shown and "Database error deleting user" in shown
    assert count("users", [user]) == 1 and count("profiles", [user]) == 1 and count("wallets", [user]) == 1
    event = AuditEvent.objects.get(action=Action.ACCOUNT_DELETE)
    assert event.outcome == "failed" and event.detail["app_rows"] == "put back"


def test_delete_names_the_withheld_columns_before_the_click(auth_standin, admin_client):  # noqa: F811
    user = make_auth_user()
    html = user_page(admin_client, user)
    assert "public.wallets.backup_seed" in html


def test_the_audit_log_shows_an_account_event_with_its_reason_and_no_key(auth_standin, admin_client):  # noqa: F811
    user = make_auth_user()
    post(admin_client, user, "ban", reason="ticket 77", duration="1h")
    event = AuditEvent.objects.get(action=Action.ACCOUNT_BAN)
    response = admin_client.get(reverse("admin:provisioning_auditevent_change", args=[event.pk]))
    assert response.status_code == 200
    page = response.content.decode()
    assert "ticket 77" in page and "Ban user" in page
    assert SERVICE_KEY not in page
    assert "reason: ticket 77" in user_page(admin_client, user)
