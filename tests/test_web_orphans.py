"""The orphaned rows page: dates as everywhere else, the withheld secret columns named
before the click, and a second confirmation that names the row count."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from provisioning.models import AuditEvent
from tests.factories import count, execute, make_auth_user

pytestmark = pytest.mark.django_db

URL = "admin:provisioning_authuser_orphans"
TABLES = ("users", "profiles", "wallets")


@pytest.fixture(autouse=True)
def one_person_team(settings):
    """The removal itself, as a one-person team runs it: with APPROVALS on, the confirmed
    removal becomes a request instead (tests/test_approvals_wiring.py)."""
    settings.APPROVALS = False


@pytest.fixture
def remover_client(client, provisioner):
    provisioner.user_permissions.add(Permission.objects.get(codename="remove_orphans"))
    client.force_login(type(provisioner).objects.get(pk=provisioner.pk))
    return client


def orphan() -> object:
    """A user whose auth row is gone: three orphaned app rows."""
    gone = make_auth_user()
    execute("UPDATE public.users SET created_at = '2026-12-04 14:02:00+00' WHERE id = %s", [gone])
    execute("DELETE FROM auth.users WHERE id = %s", [gone])
    return gone


def test_the_page_shows_dates_as_every_other_page_does(viewer_client):
    orphan()

    page = viewer_client.get(reverse(URL)).content.decode()

    assert "4 Dec 2026, 14:02" in page
    assert "<td>2026-12-04" not in page  # not the raw ISO text


def test_the_withheld_secret_columns_are_named_before_the_click(remover_client):
    orphan()

    page = remover_client.get(reverse(URL)).content.decode()

    # Above the button, before anyone clicks it.
    form = page[page.index('id="orphans-removal-note"') : page.index('id="remove-orphans-button"')]
    assert "public.wallets.backup_seed" in form and "public.profiles.bank_account_number" in form
    assert "cannot be put back" in form
    assert "can be reviewed and undone by hand" not in page


def test_the_removal_asks_again_naming_the_row_count_and_only_then_removes(remover_client):
    gone = orphan()

    asked = remover_client.post(reverse(URL))

    assert asked.status_code == 200
    page = asked.content.decode()
    assert "Remove 3 orphaned rows for good?" in page
    assert 'name="confirmed_rows" value="3"' in page
    assert "public.wallets.backup_seed" in page
    assert [count(t, [gone]) for t in TABLES] == [1, 1, 1]
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.REMOVE_ORPHANS).exists()

    remover_client.post(reverse(URL), {"confirmed_rows": "3"})

    assert [count(t, [gone]) for t in TABLES] == [0, 0, 0]
    assert AuditEvent.objects.filter(action=AuditEvent.Action.REMOVE_ORPHANS, outcome="succeeded").count() == 1


def test_a_confirmation_of_another_count_removes_nothing_and_asks_again(remover_client):
    gone = orphan()

    again = remover_client.post(reverse(URL), {"confirmed_rows": "2"})

    assert again.status_code == 200
    page = again.content.decode()
    assert "There are now 3 orphaned rows, not the 2 you confirmed." in page
    assert 'name="confirmed_rows" value="3"' in page
    assert [count(t, [gone]) for t in TABLES] == [1, 1, 1]


def test_without_the_permission_the_first_post_is_refused_and_audited(provisioner_client):
    gone = orphan()

    assert provisioner_client.post(reverse(URL)).status_code == 403
    assert provisioner_client.post(reverse(URL), {"confirmed_rows": "3"}).status_code == 403
    assert [count(t, [gone]) for t in TABLES] == [1, 1, 1]
    assert AuditEvent.objects.filter(action=AuditEvent.Action.REMOVE_ORPHANS, outcome="denied").count() == 2


def test_a_removal_posted_by_staff_in_no_group_is_a_403_a_denied_event_and_removes_nothing(client, django_user_model):
    import uuid

    from provisioning.models import AuditEvent
    from tests.factories import count, execute

    execute("INSERT INTO public.wallets (user_id) VALUES (%s)", [uuid.uuid4()])  # an orphan
    staff = django_user_model.objects.create_user("no-group-staff", password="pw-no-group-1", is_staff=True)
    client.force_login(staff)

    response = client.post(reverse("admin:provisioning_authuser_orphans"), {"confirmed_rows": "1"})

    assert response.status_code == 403
    assert count("wallets") == 1
    denied = AuditEvent.objects.filter(action=AuditEvent.Action.REMOVE_ORPHANS, outcome=AuditEvent.Outcome.DENIED)
    assert list(denied.values_list("actor_username", flat=True)) == ["no-group-staff"]
