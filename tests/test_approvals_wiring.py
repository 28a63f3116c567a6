"""The two-person rule end to end through the pages and the command line: orphan removal
always, "provision all missing" and "sync all drifted" above APPROVAL_THRESHOLD_USERS, and
APPROVALS=off running everything at once (with the health and home pages saying so)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission
from django.test import Client
from django.urls import reverse

from provisioning.models import ApprovalRequest, AuditEvent, ProvisioningJob
from tests.factories import count, execute, make_auth_user, rows, run_command

pytestmark = pytest.mark.django_db

Action = AuditEvent.Action
State = ApprovalRequest.State
TABLES = ("users", "profiles", "wallets")
ORPHANS = "admin:provisioning_authuser_orphans"


def staff(django_user_model, name: str, *, remover: bool = True):
    user = django_user_model.objects.create_user(name, password=f"{name}-password-1", is_staff=True)
    user.groups.add(Group.objects.get(name="Support provisioners"))
    if remover:
        user.user_permissions.add(Permission.objects.get(codename="remove_orphans"))
    return django_user_model.objects.get(pk=user.pk)


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def alice(support_groups, django_user_model):
    return staff(django_user_model, "alice")


@pytest.fixture
def bob(support_groups, django_user_model):
    return staff(django_user_model, "bob")


def orphan():
    gone = make_auth_user()
    execute("DELETE FROM auth.users WHERE id = %s", [gone])
    return gone


def page_of(request: ApprovalRequest) -> str:
    return reverse("admin:provisioning_approvalrequest_change", args=[request.pk])


def test_orphan_removal_on_the_page_is_a_request_that_another_remover_approves(alice, bob, viewer_client):
    gone = orphan()
    a, b = client_for(alice), client_for(bob)

    confirm = a.post(reverse(ORPHANS)).content.decode()
    assert 'id="orphans-approval-note"' in confirm and "Ask for approval to remove 3 rows" in confirm
    no_reason = a.post(reverse(ORPHANS), {"confirmed_rows": "3", "reason": " "})
    assert no_reason.status_code == 200 and "A reason is required" in no_reason.content.decode()
    assert not ApprovalRequest.objects.exists()

    asked = a.post(reverse(ORPHANS), {"confirmed_rows": "3", "reason": "ticket 7: account deleted by the user"})

    request = ApprovalRequest.objects.get()
    assert asked.status_code == 302 and asked["Location"] == page_of(request)
    assert request.state == State.WAITING and request.requested_by == alice
    assert [count(t, [gone]) for t in TABLES] == [1, 1, 1]
    # Waiting, on everyone's home page; the requester is told someone else must approve.
    home = viewer_client.get(reverse("admin:index")).content.decode()
    assert 'id="home-approvals"' in home and f"#{request.pk} Remove 3 orphaned rows" in home
    own = a.get(page_of(request)).content.decode()
    assert 'id="approval-own"' in own and 'id="approve-button"' not in own
    assert a.post(page_of(request), {"decision": "approve"}).status_code == 403
    assert viewer_client.post(page_of(request), {"decision": "approve"}).status_code == 403
    assert 'id="approval-cannot"' in viewer_client.get(page_of(request)).content.decode()
    assert AuditEvent.objects.filter(action=Action.APPROVAL_APPROVED, outcome="denied").count() == 2
    assert [count(t, [gone]) for t in TABLES] == [1, 1, 1]

    page = b.get(page_of(request)).content.decode()
    assert 'id="approve-button"' in page and "ticket 7: account deleted by the user" in page
    done = b.post(page_of(request), {"decision": "approve", "reason": "checked the rows"}, follow=True)

    assert "Approved and ran: Removed 3 orphaned row(s)" in done.content.decode()
    request.refresh_from_db()
    assert request.state == State.RAN and request.decided_by == bob
    assert [count(t, [gone]) for t in TABLES] == [0, 0, 0]
    assert AuditEvent.objects.get(action=Action.REMOVE_ORPHANS, outcome="succeeded").actor == bob
    assert f"#{request.pk} Remove" not in viewer_client.get(reverse("admin:index")).content.decode()
    listing = viewer_client.get(reverse("admin:provisioning_approvalrequest_changelist")).content.decode()
    assert "Approved and ran" in listing


def test_refusing_on_the_page_needs_a_reason_and_runs_nothing(alice, bob):
    gone = orphan()
    client_for(alice).post(reverse(ORPHANS), {"confirmed_rows": "3", "reason": "clean up"})
    request = ApprovalRequest.objects.get()
    b = client_for(bob)

    b.post(page_of(request), {"decision": "refuse", "reason": ""})
    request.refresh_from_db()
    assert request.state == State.WAITING

    b.post(page_of(request), {"decision": "refuse", "reason": "the user asked for their data back"})
    request.refresh_from_db()
    assert request.state == State.REFUSED and request.decision_reason == "the user asked for their data back"
    assert [count(t, [gone]) for t in TABLES] == [1, 1, 1]
    assert 'id="approve-button"' not in b.get(page_of(request)).content.decode()


def test_the_command_line_asks_and_another_staff_member_approves(alice, bob):
    gone = orphan()

    code, out = run_command("remove_orphans")
    assert code == 2 and "reason is required" in out
    code, out = run_command("remove_orphans", "--reason", "nightly clean-up", "--as", "alice")
    request = ApprovalRequest.objects.get()
    assert code == 0 and f"Request #{request.pk} asked" in out and "Nothing was removed" in out
    assert request.requested_by == alice and [count(t, [gone]) for t in TABLES] == [1, 1, 1]

    assert f"#{request.pk}" in run_command("approvals", "list")[1]
    assert run_command("approvals", "approve", str(request.pk))[0] == 2  # no --as
    assert run_command("approvals", "approve", str(request.pk), "--as", "nobody")[0] == 2
    code, out = run_command("approvals", "approve", str(request.pk), "--as", "alice")
    assert code == 1 and "own request" in out
    assert run_command("approvals", "refuse", str(request.pk), "--as", "bob")[0] == 2  # no --reason

    code, out = run_command("approvals", "approve", str(request.pk), "--as", "bob", "--reason", "ok")

    assert code == 0 and "ran: Removed 3 orphaned row(s)" in out, out
    assert [count(t, [gone]) for t in TABLES] == [0, 0, 0]
    request.refresh_from_db()
    assert request.state == State.RAN and request.decided_by == bob
    code, out = run_command("approvals", "approve", str(request.pk), "--as", "bob")
    assert code == 1 and "already" in out
    assert run_command("approvals", "list")[1].strip() == "Nothing waiting for approval."


def test_the_os_user_may_ask_and_a_named_staff_member_approves(bob):
    gone = orphan()

    code, out = run_command("remove_orphans", "--reason", "clean up", "--json")

    request = ApprovalRequest.objects.get()
    assert code == 0 and f'"request_id": {request.pk}' in out
    assert request.requested_by is None and request.requested_by_username.startswith("os:")
    assert run_command("approvals", "approve", str(request.pk), "--as", "bob")[0] == 0
    assert [count(t, [gone]) for t in TABLES] == [0, 0, 0]


def test_with_approvals_off_removal_runs_at_once_and_the_pages_say_the_rule_is_off(alice, settings):
    settings.APPROVALS = False
    gone, other = orphan(), orphan()
    a = client_for(alice)

    confirm = a.post(reverse(ORPHANS)).content.decode()
    assert 'id="orphans-approval-note"' not in confirm and "Yes, remove 6 rows" in confirm
    a.post(reverse(ORPHANS), {"confirmed_rows": "6"})
    assert [count(t, [gone, other]) for t in TABLES] == [0, 0, 0]
    third = orphan()
    assert run_command("remove_orphans")[0] == 0
    assert [count(t, [third]) for t in TABLES] == [0, 0, 0] and not ApprovalRequest.objects.exists()
    assert AuditEvent.objects.filter(action=Action.REMOVE_ORPHANS, outcome="succeeded").count() == 2

    health = a.get(reverse("provisioning-health")).content.decode()
    assert "The two-person rule is off" in health
    assert 'id="home-approvals-off"' in a.get(reverse("admin:index")).content.decode()
    assert "The two-person rule is off" in run_command("approvals", "list")[1]


def test_the_health_page_says_the_rule_is_on_with_its_ttl_and_threshold(viewer_client, settings):
    settings.APPROVAL_THRESHOLD_USERS = 250
    page = viewer_client.get(reverse("provisioning-health")).content.decode()
    assert "Two-person rule on" in page and "more than 250 users" in page and "after 24 h" in page


def test_provision_all_above_the_threshold_is_a_request_and_starts_the_job_once_approved(alice, bob, settings):
    settings.APPROVAL_THRESHOLD_USERS = 2
    users = [make_auth_user(keep=("users",)) for _ in range(3)]
    a, b = client_for(alice), client_for(bob)
    url = reverse("admin:provisioning_authuser_provision_all")

    preview = a.get(url).content.decode()
    assert 'id="bulk-approval-note"' in preview and "Ask for approval to provision all missing" in preview
    a.post(url, {"reason": ""})
    assert not ApprovalRequest.objects.exists() and not ProvisioningJob.objects.exists()
    asked = a.post(url, {"reason": "incident 12: the trigger was off for a day"})

    request = ApprovalRequest.objects.get()
    assert asked["Location"] == page_of(request) and request.kind == "provision_all_missing"
    assert request.snapshot == {"users": 3} and request.summary == "Provision all missing: 3 users missing rows"
    assert not ProvisioningJob.objects.exists() and count("profiles", users) == 0

    make_auth_user(keep=("users",))  # one more since the request: it runs against the new state
    b.post(page_of(request), {"decision": "approve"})

    request.refresh_from_db()
    job = ProvisioningJob.objects.get()
    assert request.state == State.RAN and request.result["job_id"] == job.pk
    assert request.result["changed_since_request"].endswith("4 users missing rows")
    assert job.created_by == bob
    page = b.get(page_of(request)).content.decode()
    assert reverse("provisioning_job", args=[job.pk]) in page and 'id="approval-changed"' in page


def test_provision_all_at_or_below_the_threshold_runs_as_before(alice, settings):
    settings.APPROVAL_THRESHOLD_USERS = 3
    [make_auth_user(keep=("users",)) for _ in range(3)]
    url = reverse("admin:provisioning_authuser_provision_all")

    assert 'id="bulk-approval-note"' not in client_for(alice).get(url).content.decode()
    response = client_for(alice).post(url)

    job = ProvisioningJob.objects.get()
    assert response["Location"] == reverse("provisioning_job", args=[job.pk])
    assert not ApprovalRequest.objects.exists()


def test_sync_all_above_the_threshold_is_a_request_that_syncs_once_approved(alice, bob, settings):
    settings.APPROVAL_THRESHOLD_USERS = 1
    moved = [make_auth_user(f"old{i}@example.com") for i in range(2)]
    for i, user_id in enumerate(moved):
        execute("UPDATE auth.users SET email = %s WHERE id = %s", [f"new{i}@example.com", user_id])
    a, b = client_for(alice), client_for(bob)
    url = reverse("admin:provisioning_authuser_sync_all")

    assert 'id="bulk-approval-note"' in a.get(url).content.decode()
    a.post(url, {"reason": "emails changed in auth"})

    request = ApprovalRequest.objects.get()
    assert request.kind == "sync_all_drifted" and request.snapshot == {"users": 2}
    assert [rows("users", u)[0]["email"] for u in moved] == ["old0@example.com", "old1@example.com"]
    b.post(page_of(request), {"decision": "approve"})

    request.refresh_from_db()
    assert request.state == State.RAN and "Synced 2 value(s)" in request.result["summary"]
    assert [rows("users", u)[0]["email"] for u in moved] == ["new0@example.com", "new1@example.com"]


def test_a_viewer_forging_the_bulk_post_above_the_threshold_is_still_refused_and_audited(viewer_client, settings):
    settings.APPROVAL_THRESHOLD_USERS = 0
    make_auth_user(keep=("users",))

    response = viewer_client.post(reverse("admin:provisioning_authuser_provision_all"), {"reason": "forged"})

    assert response.status_code == 403
    assert not ApprovalRequest.objects.exists() and not ProvisioningJob.objects.exists()
    assert AuditEvent.objects.filter(action=Action.JOB_STARTED, outcome="denied").count() == 1
