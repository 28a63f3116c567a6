"""The paths this wave added, on the schema real Supabase apps have rather than the demo's:
profiles and wallets reference public.users(id), public.users.password is NOT NULL with no
default and nobody fills it, and profiles.user_id / wallets.user_id have no index at all
(shared/guide/domain.md, "What real app schemas add"). Each asserts on rows."""

from __future__ import annotations

import json

import pytest
from django.core.cache import cache
from django.test import override_settings
from django.urls import reverse

from provisioning import jobs
from provisioning.actors import Actor
from provisioning.hooks import watchdog
from provisioning.models import AuditEvent, ProvisioningJob
from tests.factories import count, make_auth_user, make_eloity_migration_shape

pytestmark = pytest.mark.django_db

TABLES = ("users", "profiles", "wallets")
PASSWORD = "public.users.password is NOT NULL with no default and the spec does not fill it"
CHAIN = f"needs its public.users row, which cannot be written ({PASSWORD})"
SECRET = "bearer-secret-for-real-shape-tests-0123"


def minutes_ago(n: int) -> str:
    from django.utils import timezone

    return (timezone.now() - timezone.timedelta(minutes=n)).isoformat()


@pytest.fixture
def people():
    """Sign-ups made before the migration: one has its app user, one has nothing."""
    has_app_user = make_auth_user("has-app-user@example.com", keep=("users",), created_at=minutes_ago(5))
    has_nothing = make_auth_user("has-nothing@example.com", keep=(), created_at=minutes_ago(5))
    make_eloity_migration_shape()
    return has_app_user, has_nothing


def test_the_webhook_writes_what_it_can_and_names_the_chain_for_the_rest(client, people):
    has_app_user, has_nothing = people
    body = {"type": "INSERT", "table": "users", "schema": "auth", "record": {"id": None}, "old_record": None}

    with override_settings(SIGNUP_WEBHOOK_SECRET=SECRET):
        answers = []
        for user_id in (has_app_user, has_nothing, has_app_user):
            body["record"]["id"] = str(user_id)
            answers.append(
                client.post(
                    reverse("signup_hook"),
                    json.dumps(body),
                    content_type="application/json",
                    HTTP_AUTHORIZATION=f"Bearer {SECRET}",
                )
            )

    assert [a.status_code for a in answers] == [200, 200, 200]
    assert answers[0].json()["created"] == {"users": 0, "profiles": 1, "wallets": 1}
    refused = {(n["table"], n["reason"]) for n in answers[1].json()["not_provisioned"]}
    assert refused == {("users", PASSWORD), ("profiles", CHAIN), ("wallets", CHAIN)}
    assert [count(t, [has_app_user]) for t in TABLES] == [1, 1, 1]  # the replay wrote nothing twice
    assert [count(t, [has_nothing]) for t in TABLES] == [0, 0, 0]


def test_the_watchdog_heals_what_it_can_and_keeps_the_incident_open_for_the_rest(people):
    has_app_user, has_nothing = people
    sent: list[str] = []

    result = watchdog.run(grace=60, heal=True, notify=sent.append)

    assert result.alerted and result.healed == {"users": 0, "profiles": 1, "wallets": 1}
    assert result.finding.late == [has_nothing] and not result.resolved
    assert [count(t, [has_app_user]) for t in TABLES] == [1, 1, 1]
    assert watchdog.open_incident() is not None and len(sent) == 1


def test_a_background_job_on_the_real_shape_counts_exactly_what_its_batches_wrote(provisioner, people):
    _, has_nothing = people
    actor = Actor(username=provisioner.get_username(), channel=AuditEvent.Channel.WEB, user=provisioner)
    job = jobs.start_provision_all_job(actor=actor, batch_size=1)

    jobs.run_job(job.pk)

    job.refresh_from_db()
    assert job.state == ProvisioningJob.State.SUCCEEDED
    assert job.rows_created == {"users": 0, "profiles": 1, "wallets": 1}
    assert job.not_provisioned_count == 3
    assert (job.batches_done, job.users_done) == (job.total_batches, job.total_users) == (2, 2)
    assert [count(t, [has_nothing]) for t in TABLES] == [0, 0, 0]


def test_the_admin_shows_the_chain_as_cannot_be_provisioned(provisioner_client, people):
    _, has_nothing = people

    listed = provisioner_client.get(reverse("admin:provisioning_authuser_changelist"), {"status": "cannot"})
    detail = provisioner_client.get(reverse("admin:provisioning_authuser_change", args=[has_nothing])).content

    assert [u.pk for u in listed.context["cl"].result_list] == [has_nothing]
    html = detail.decode()
    assert "Cannot be provisioned</strong>:" in html and CHAIN in html and 'id="provision-button"' not in html


@override_settings(METRICS_TOKEN=SECRET)
def test_metrics_count_the_chain_among_rows_that_cannot_be_provisioned(client, people):
    cache.clear()

    text = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {SECRET}").content.decode()

    assert "eloity_cannot_provision_rows 3.0" in text
    assert 'eloity_missing_rows{table="profiles"} 2.0' in text
    cache.clear()
