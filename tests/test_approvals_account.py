"""The two-person rule on the account actions (issue 26): deleting a user, removing MFA and a
ban longer than 7 days become requests a second staff member approves, from the user's page
and from `manage.py account`; shorter bans run at once, and with APPROVALS off everything
does. Against the Auth stand-in, asserting on auth.users, the app rows and the audit log."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from provisioning.actors import Actor
from provisioning.approvals import services as approvals
from provisioning.models import ApprovalRequest, AuditEvent
from tests.account_rows import add_factor, add_session
from tests.auth_standin import auth_standin  # noqa: F401
from tests.factories import count, make_auth_user, run_command
from tests.test_account_actions import auth_row, factors, sessions

Action = AuditEvent.Action
State = ApprovalRequest.State
TABLES = ("users", "profiles", "wallets")


def account_admin(django_user_model, name: str):
    user = django_user_model.objects.create_user(name, password=f"{name}-password-1", is_staff=True)
    user.groups.add(Group.objects.get(name="Support account admins"))
    return django_user_model.objects.get(pk=user.pk)


@pytest.fixture
def alice(support_groups, django_user_model):
    return account_admin(django_user_model, "alice")


@pytest.fixture
def bob(support_groups, django_user_model):
    return account_admin(django_user_model, "bob")


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def post(client, user_id, name, **data):
    url = reverse("admin:provisioning_authuser_account_action", args=[user_id, name])
    return client.post(url, data, follow=True)


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def page_of(request: ApprovalRequest) -> str:
    return reverse("admin:provisioning_approvalrequest_change", args=[request.pk])


def test_delete_asked_on_the_page_by_one_and_approved_by_another_deletes_the_user_and_rows(
    auth_standin,  # noqa: F811
    alice,
    bob,
):
    user = make_auth_user("leaving@example.com")
    a, b = client_for(alice), client_for(bob)
    page = a.get(reverse("admin:provisioning_authuser_change", args=[user])).content.decode()
    assert 'id="account-delete-approval"' in page and "Needs a second staff member" in page

    response = post(a, user, "delete", reason="ticket 12: erasure request", mode="hard")

    asked = ApprovalRequest.objects.get()
    (shown,) = messages_of(response)
    assert f'Asked for approval: <a href="{page_of(asked)}">request {asked.pk}</a>' in shown
    assert asked.state == State.WAITING and asked.requested_by == alice and asked.kind == "account_delete"
    assert asked.target_user_id == user and asked.reason == "ticket 12: erasure request"
    assert asked.snapshot["app_rows"] == {"public.users": 1, "public.profiles": 1, "public.wallets": 1}
    assert "leaving@example.com" in asked.summary and "3 app rows" in asked.summary
    # Nothing ran: the user and their rows are all there, Auth was not called.
    assert auth_row(user) is not None and [count(t, [user]) for t in TABLES] == [1, 1, 1]
    assert auth_standin.requests == [] and not AuditEvent.objects.filter(action=Action.ACCOUNT_DELETE).exists()

    # The requester cannot approve their own request (403, audited, nothing runs).
    assert a.post(page_of(asked), {"decision": "approve"}).status_code == 403
    with pytest.raises(approvals.OwnRequest):
        approvals.approve(actor=Actor(username="alice", channel="cli", user=alice), request_id=asked.pk)
    assert AuditEvent.objects.filter(action=Action.APPROVAL_APPROVED, outcome="denied").count() == 2
    assert auth_row(user) is not None and [count(t, [user]) for t in TABLES] == [1, 1, 1]

    done = b.post(page_of(asked), {"decision": "approve", "reason": "checked the ticket"}, follow=True)

    assert messages_of(done) == [
        "Approved and ran: User leaving@example.com deleted, with 3 app row(s), kept in the audit event."
    ]
    asked.refresh_from_db()
    assert asked.state == State.RAN and asked.decided_by == bob
    assert auth_row(user) is None and [count(t, [user]) for t in TABLES] == [0, 0, 0]
    assert ApprovalRequest.objects.count() == 1
    events = AuditEvent.objects.filter(target_user_ids__contains=[user], outcome="succeeded").order_by("id")
    assert [e.action for e in events] == [
        Action.APPROVAL_REQUESTED,
        Action.APPROVAL_APPROVED,
        Action.ACCOUNT_DELETE,
        Action.APPROVAL_RAN,
    ]
    deleted = events.get(action=Action.ACCOUNT_DELETE)
    assert deleted.actor == bob and "ticket 12: erasure request" in deleted.detail["reason"]
    assert "asked by alice" in deleted.detail["reason"]
    assert events.get(action=Action.APPROVAL_RAN).detail["result"]["audit_event_id"] == deleted.pk


def test_a_ban_of_30_days_is_a_request_and_a_ban_of_1_day_runs_at_once(auth_standin, alice, bob):  # noqa: F811
    user = make_auth_user()
    add_session(user)
    a = client_for(alice)

    long = post(a, user, "ban", reason="ticket 3: fraud", duration="30d")

    asked = ApprovalRequest.objects.get()
    assert "Asked for approval" in messages_of(long)[0] and asked.kind == "account_long_ban"
    assert auth_row(user)["banned_until"] is None and sessions(user) == 1 and auth_standin.requests == []

    short = post(a, user, "ban", reason="ticket 4: cooling off", duration="24h")

    assert "Banned until" in messages_of(short)[0] and ApprovalRequest.objects.count() == 1
    assert auth_row(user)["banned_until"] is not None and sessions(user) == 0
    short_until = auth_row(user)["banned_until"]

    # The account changed since the request (the short ban): a long ban runs anyway, and says so.
    done = approvals.approve(actor=Actor(username="bob", channel="web", user=bob), request_id=asked.pk)
    assert done.state == State.RAN and "ran against the data as it is now" in done.result["changed_since_request"]
    assert (auth_row(user)["banned_until"] - short_until).days >= 28
    ban = AuditEvent.objects.filter(action=Action.ACCOUNT_BAN).order_by("id").last()
    assert ban.actor == bob and ban.detail["duration"] == "720h"


def test_remove_mfa_is_refused_at_approval_when_the_factors_changed(auth_standin, alice, bob):  # noqa: F811
    user = make_auth_user()
    add_factor(user, name="old phone")
    response = post(client_for(alice), user, "remove-mfa", reason="ticket 9: lost phone", factor="all")
    asked = ApprovalRequest.objects.get()
    assert "Asked for approval" in messages_of(response)[0] and asked.kind == "account_remove_mfa"
    assert factors(user) == 1

    add_factor(user, name="new phone")  # the user enrolled again meanwhile
    done = approvals.approve(actor=Actor(username="bob", channel="web", user=bob), request_id=asked.pk)

    assert done.state == State.REFUSED and "the data changed since the request" in done.decision_reason
    assert factors(user) == 2 and auth_standin.requests == []
    assert not AuditEvent.objects.filter(action=Action.ACCOUNT_REMOVE_MFA).exists()
    assert AuditEvent.objects.get(action=Action.APPROVAL_REFUSED).detail["changed"] is True


def test_remove_mfa_unchanged_runs_when_approved(auth_standin, alice, bob):  # noqa: F811
    user = make_auth_user()
    factor = add_factor(user, name="old phone")
    add_factor(user, name="keep")
    post(client_for(alice), user, "remove-mfa", reason="ticket 10", factor=str(factor))
    asked = ApprovalRequest.objects.get()
    done = approvals.approve(actor=Actor(username="bob", channel="web", user=bob), request_id=asked.pk)
    assert done.state == State.RAN and "Removed 1 MFA factor" in done.result["summary"]
    assert factors(user) == 1


def test_the_command_line_asks_as_the_named_staff_and_prints_the_request(auth_standin, alice, bob):  # noqa: F811
    user = make_auth_user("cli-asked@example.com")
    add_factor(user)
    code, out = run_command("account", "ban", "--user", str(user), "--reason", "r", "--duration", "7d")
    assert code == 0 and "Banned until" in out and not ApprovalRequest.objects.exists()
    banned_until, sent = auth_row(user)["banned_until"], len(auth_standin.requests)

    code, out = run_command("account", "delete", "--user", str(user), "--reason", "erasure", "--as", "alice")
    asked = ApprovalRequest.objects.get()
    assert code == 0 and f"Asked for approval: request {asked.pk}" in out
    assert asked.requested_by == alice and asked.params["soft"] is False
    assert auth_row(user) is not None and [count(t, [user]) for t in TABLES] == [1, 1, 1]

    code, out = run_command("account", "remove-mfa", "--user", str(user), "--reason", "r", "--all", "--as", "alice")
    assert code == 0 and "Asked for approval" in out and factors(user) == 1
    code, out = run_command("account", "ban", "--user", str(user), "--reason", "r", "--duration", "forever")
    assert code == 0 and "Asked for approval" in out and auth_row(user)["banned_until"] == banned_until
    assert ApprovalRequest.objects.count() == 3 and len(auth_standin.requests) == sent

    code, out = run_command("approvals", "approve", str(asked.pk), "--as", "bob")
    assert code == 0, out
    assert auth_row(user) is None and [count(t, [user]) for t in TABLES] == [0, 0, 0]


def test_with_approvals_off_the_actions_run_at_once(auth_standin, alice, settings):  # noqa: F811
    settings.APPROVALS = False
    user = make_auth_user()
    add_factor(user)
    a = client_for(alice)
    page = a.get(reverse("admin:provisioning_authuser_change", args=[user])).content.decode()
    assert "Needs a second staff member" not in page

    assert "Banned until" in messages_of(post(a, user, "ban", reason="r", duration="30d"))[0]
    assert "Removed 1 MFA factor" in messages_of(post(a, user, "remove-mfa", reason="r", factor="all"))[0]
    post(a, user, "delete", reason="erasure", mode="hard")

    assert not ApprovalRequest.objects.exists()
    assert auth_row(user) is None and [count(t, [user]) for t in TABLES] == [0, 0, 0]
