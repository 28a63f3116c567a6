"""The two-person rule's services (provisioning/approvals/): who may ask and decide, expiry,
exactly once under concurrent approval, "changed since the request", and the audit trail."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.utils import timezone

from provisioning.actors import Actor
from provisioning.approvals import registry, services
from provisioning.approvals.kinds import REMOVE_ORPHANS
from provisioning.models import ApprovalRequest, AuditEvent
from tests.factories import count, execute, make_auth_user

Action = AuditEvent.Action
State = ApprovalRequest.State
TABLES = ("users", "profiles", "wallets")


def web_actor(user) -> Actor:
    return Actor(username=user.get_username(), channel=AuditEvent.Channel.WEB, user=user)


@pytest.fixture
def remover(provisioner):
    provisioner.user_permissions.add(Permission.objects.get(codename="remove_orphans"))
    return type(provisioner).objects.get(pk=provisioner.pk)


@pytest.fixture
def second_remover(support_groups, django_user_model):
    from django.contrib.auth.models import Group

    user = django_user_model.objects.create_user("prov-b", password="prov-b-password", is_staff=True)
    user.groups.add(Group.objects.get(name="Support provisioners"))
    user.user_permissions.add(Permission.objects.get(codename="remove_orphans"))
    return django_user_model.objects.get(pk=user.pk)


def orphan():
    """A user whose auth row is gone: three orphaned app rows."""
    gone = make_auth_user()
    execute("DELETE FROM auth.users WHERE id = %s", [gone])
    return gone


def events(action: str, outcome: str | None = None):
    found = AuditEvent.objects.filter(action=action)
    return found.filter(outcome=outcome) if outcome else found


@pytest.mark.django_db
def test_asking_records_the_request_its_snapshot_and_an_asked_event(remover):
    gone = orphan()

    request = services.request_approval(
        actor=web_actor(remover), kind=REMOVE_ORPHANS, reason="ticket 42: the user deleted their account"
    )

    request.refresh_from_db()
    assert request.state == State.WAITING
    assert request.summary.startswith("Remove 3 orphaned rows")
    assert request.requested_by == remover and request.requested_by_username == "prov"
    assert set(request.snapshot["tables"]) == {"public.users", "public.profiles", "public.wallets"}
    assert timedelta(hours=23, minutes=59) < request.expires_at - timezone.now() <= timedelta(hours=24)
    asked = events(Action.APPROVAL_REQUESTED).get()
    assert asked.outcome == "succeeded" and asked.detail["request_id"] == request.pk
    assert asked.detail["reason"] == "ticket 42: the user deleted their account"
    assert [count(t, [gone]) for t in TABLES] == [1, 1, 1]  # nothing ran


@pytest.mark.django_db
def test_a_request_needs_a_reason(remover):
    with pytest.raises(ValueError, match="reason is required"):
        services.request_approval(actor=web_actor(remover), kind=REMOVE_ORPHANS, reason="  ")
    assert not ApprovalRequest.objects.exists()


@pytest.mark.django_db
def test_asking_without_the_permission_is_refused_and_audited(provisioner):
    with pytest.raises(services.ApprovalDenied):
        services.request_approval(actor=web_actor(provisioner), kind=REMOVE_ORPHANS, reason="clean up")
    assert not ApprovalRequest.objects.exists()
    assert events(Action.APPROVAL_REQUESTED, "denied").count() == 1


@pytest.mark.django_db
def test_the_requester_cannot_approve_their_own_request(remover):
    gone = orphan()
    request = services.request_approval(actor=web_actor(remover), kind=REMOVE_ORPHANS, reason="clean up")

    with pytest.raises(services.OwnRequest):
        services.approve(actor=web_actor(remover), request_id=request.pk)

    request.refresh_from_db()
    assert request.state == State.WAITING
    assert [count(t, [gone]) for t in TABLES] == [1, 1, 1]
    denied = events(Action.APPROVAL_APPROVED, "denied").get()
    assert denied.actor == remover and "own request" in denied.detail["why"]


@pytest.mark.django_db
def test_an_approver_without_the_kinds_permission_is_refused_and_audited(remover, viewer, provisioner):
    gone = orphan()
    request = services.request_approval(actor=web_actor(remover), kind=REMOVE_ORPHANS, reason="clean up")
    other = type(provisioner).objects.create_user("prov-c", password="prov-c-password", is_staff=True)
    other.groups.add(*provisioner.groups.all())  # may provision, but not remove orphans

    for user in (viewer, other):
        with pytest.raises(services.ApprovalDenied):
            services.approve(actor=web_actor(user), request_id=request.pk)
    with pytest.raises(services.ApprovalDenied):
        services.refuse(actor=web_actor(viewer), request_id=request.pk, reason="no")

    request.refresh_from_db()
    assert request.state == State.WAITING
    assert [count(t, [gone]) for t in TABLES] == [1, 1, 1]
    assert events(Action.APPROVAL_APPROVED, "denied").count() == 2
    assert events(Action.APPROVAL_REFUSED, "denied").count() == 1


@pytest.mark.django_db
def test_the_command_line_without_a_named_staff_account_cannot_decide(remover):
    request = services.request_approval(actor=web_actor(remover), kind=REMOVE_ORPHANS, reason="clean up")
    with pytest.raises(services.ApprovalDenied, match="named staff account"):
        services.approve(actor=Actor.command_line(), request_id=request.pk)


@pytest.mark.django_db
def test_a_second_staff_member_approves_and_it_runs_once_with_every_step_audited(remover, second_remover):
    gone = orphan()
    request = services.request_approval(actor=web_actor(remover), kind=REMOVE_ORPHANS, reason="clean up")

    done = services.approve(actor=web_actor(second_remover), request_id=request.pk, reason="checked the sample")

    done.refresh_from_db()
    assert done.state == State.RAN and done.ran_at is not None
    assert done.decided_by == second_remover and done.decision_reason == "checked the sample"
    assert done.result["summary"].startswith("Removed 3 orphaned row(s)")
    assert [count(t, [gone]) for t in TABLES] == [0, 0, 0]
    removal = events(Action.REMOVE_ORPHANS, "succeeded").get()
    assert removal.actor == second_remover and done.result["audit_event_ids"] == [removal.pk]
    steps = list(
        AuditEvent.objects.filter(detail__request_id=request.pk).order_by("id").values_list("action", "actor_username")
    )
    assert steps == [
        (Action.APPROVAL_REQUESTED, "prov"),
        (Action.APPROVAL_APPROVED, "prov-b"),
        (Action.APPROVAL_RAN, "prov-b"),
    ]
    with pytest.raises(services.NotWaiting):
        services.approve(actor=web_actor(second_remover), request_id=request.pk)
    assert events(Action.REMOVE_ORPHANS).count() == 1


@pytest.mark.django_db
def test_refusing_needs_a_reason_and_records_it(remover, second_remover):
    gone = orphan()
    request = services.request_approval(actor=web_actor(remover), kind=REMOVE_ORPHANS, reason="clean up")

    with pytest.raises(ValueError, match="reason is required"):
        services.refuse(actor=web_actor(second_remover), request_id=request.pk, reason="")
    refused = services.refuse(actor=web_actor(second_remover), request_id=request.pk, reason="the user came back")

    refused.refresh_from_db()
    assert refused.state == State.REFUSED and refused.decision_reason == "the user came back"
    assert [count(t, [gone]) for t in TABLES] == [1, 1, 1]
    event = events(Action.APPROVAL_REFUSED, "succeeded").get()
    assert event.detail["reason"] == "the user came back" and event.actor == second_remover
    with pytest.raises(services.NotWaiting):
        services.approve(actor=web_actor(second_remover), request_id=request.pk)


@pytest.mark.django_db
def test_a_request_expires_after_the_ttl_and_cannot_be_approved(remover, second_remover, settings):
    settings.APPROVAL_TTL = timedelta(hours=2)
    gone = orphan()
    request = services.request_approval(actor=web_actor(remover), kind=REMOVE_ORPHANS, reason="clean up")
    assert timedelta(hours=1, minutes=59) < request.expires_at - timezone.now() <= timedelta(hours=2)
    other = services.request_approval(actor=web_actor(remover), kind=REMOVE_ORPHANS, reason="clean up again")
    ApprovalRequest.objects.filter(pk__in=[request.pk, other.pk]).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )

    with pytest.raises(services.RequestExpired):
        services.approve(actor=web_actor(second_remover), request_id=request.pk)
    assert services.expire_overdue() == [other.pk]
    assert services.expire_overdue() == []

    assert set(ApprovalRequest.objects.values_list("state", flat=True)) == {State.EXPIRED}
    assert [count(t, [gone]) for t in TABLES] == [1, 1, 1]
    assert events(Action.APPROVAL_EXPIRED, "succeeded").count() == 2
    assert not events(Action.APPROVAL_APPROVED).exists()


@pytest.mark.django_db
def test_orphans_that_changed_since_the_request_are_refused_unrun(remover, second_remover):
    first = orphan()
    request = services.request_approval(actor=web_actor(remover), kind=REMOVE_ORPHANS, reason="clean up")
    second = orphan()  # a new orphan the approver never saw

    done = services.approve(actor=web_actor(second_remover), request_id=request.pk)

    done.refresh_from_db()
    assert done.state == State.REFUSED
    assert "changed since the request" in done.decision_reason and "Remove 6 orphaned rows" in done.decision_reason
    assert [count(t, [first, second]) for t in TABLES] == [2, 2, 2]
    assert events(Action.APPROVAL_REFUSED, "succeeded").get().detail["changed"] is True
    assert not events(Action.REMOVE_ORPHANS).exists()


@pytest.fixture
def counting_kind():
    """A kind whose run counts its calls (and waits a little, to widen any race)."""
    calls = []

    def run(*, actor, params):
        calls.append(actor.username)
        import time

        time.sleep(0.2)
        return {"summary": f"ran for {params['n']}"}

    def snapshot(params):
        import time

        # Taken while the approval holds the row: a wide window for a second approver to
        # slip in, were the row not locked and the state change not guarded.
        time.sleep(0.3)
        return {"seen": params["n"] + len(calls)}

    registry.register(
        "test_counting",
        permission="provisioning.remove_orphans",
        run=run,
        describe=lambda params, snapshot: f"count to {params['n']} (seen {snapshot.get('seen')})",
        snapshot=snapshot,
    )
    yield calls
    registry.unregister("test_counting")


@pytest.mark.django_db
def test_a_kind_that_runs_on_change_runs_against_the_new_state_and_says_so(remover, second_remover, counting_kind):
    request = services.request_approval(actor=web_actor(remover), kind="test_counting", params={"n": 1}, reason="r")
    counting_kind.append("someone else")  # the data moved on

    done = services.approve(actor=web_actor(second_remover), request_id=request.pk)

    assert done.state == State.RAN and counting_kind == ["someone else", "prov-b"]
    assert done.result["changed_since_request"] == "ran against the data as it is now: count to 1 (seen 2)"
    assert done.result["summary"] == "ran for 1"
    assert events(Action.APPROVAL_APPROVED, "succeeded").get().detail["changed"] is True


@pytest.mark.django_db
def test_a_failing_run_marks_the_request_failed_and_audits_it(remover, second_remover):
    def fail(*, actor, params):
        raise RuntimeError("the database said no\nDETAIL: more")

    registry.register("test_failing", permission="provisioning.remove_orphans", run=fail, describe=lambda p, s: "x")
    try:
        request = services.request_approval(actor=web_actor(remover), kind="test_failing", reason="r")
        done = services.approve(actor=web_actor(second_remover), request_id=request.pk)
    finally:
        registry.unregister("test_failing")

    assert done.state == State.FAILED and done.result["error"] == "the database said no"
    ran = events(Action.APPROVAL_RAN).get()
    assert ran.outcome == "failed" and ran.detail["error"] == "the database said no"


@pytest.mark.django_db(transaction=True)
def test_two_staff_approving_at_the_same_moment_run_it_once(remover, second_remover, django_user_model, counting_kind):
    third = django_user_model.objects.create_user("prov-c", password="prov-c-password", is_staff=True)
    third.user_permissions.add(Permission.objects.get(codename="remove_orphans"))
    third = django_user_model.objects.get(pk=third.pk)
    request = services.request_approval(actor=web_actor(remover), kind="test_counting", params={"n": 1}, reason="r")
    barrier = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def approve_as(user):
        try:
            barrier.wait(timeout=10)
            done = services.approve(actor=web_actor(user), request_id=request.pk)
            outcomes[user.username] = done.state
        except services.NotWaiting as exc:
            outcomes[user.username] = f"not waiting: {exc}"
        finally:
            connection.close()  # each thread's own connection

    threads = [threading.Thread(target=approve_as, args=(u,)) for u in (second_remover, third)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert len(counting_kind) == 1, outcomes
    assert sorted(v.split(":")[0] for v in outcomes.values()) == ["not waiting", State.RAN], outcomes
    request.refresh_from_db()
    assert request.state == State.RAN and request.decided_by_username == counting_kind[0]
    assert events(Action.APPROVAL_APPROVED, "succeeded").count() == 1
    assert events(Action.APPROVAL_RAN, "succeeded").count() == 1


@pytest.mark.parametrize(
    ("raw", "seconds"), [(None, 86_400), ("24h", 86_400), ("90m", 5_400), ("2d", 172_800), ("3600", 3_600)]
)
def test_approval_ttl_is_read_as_a_duration(monkeypatch, raw, seconds):
    from eloity_admin import environment

    if raw is None:
        monkeypatch.delenv("APPROVAL_TTL", raising=False)
    else:
        monkeypatch.setenv("APPROVAL_TTL", raw)
    assert environment.duration("APPROVAL_TTL", default="24h", minimum_seconds=60) == timedelta(seconds=seconds)


@pytest.mark.parametrize("raw", ["soon", "1w", "-5m", "30s"])
def test_a_malformed_approval_ttl_is_one_line_naming_the_variable(monkeypatch, raw):
    from django.core.exceptions import ImproperlyConfigured

    from eloity_admin import environment

    monkeypatch.setenv("APPROVAL_TTL", raw)
    with pytest.raises(ImproperlyConfigured, match=r"^APPROVAL_TTL must be"):
        environment.duration("APPROVAL_TTL", default="24h", minimum_seconds=60)


def test_approvals_off_and_the_threshold_are_read_from_the_environment(tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "APPROVALS": "off", "APPROVAL_THRESHOLD_USERS": "50", "DJANGO_SETTINGS_MODULE": ""}
    code = (
        "import os; os.environ['DJANGO_SETTINGS_MODULE']='eloity_admin.settings_test'; "
        "from django.conf import settings; print(settings.APPROVALS, settings.APPROVAL_THRESHOLD_USERS, "
        "settings.APPROVAL_TTL)"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["False", "50", "1", "day,", "0:00:00"], out.stderr
