"""Odd input in a list's address is ignored with a word: every list shows a sensible page
and a message naming what it ignored (provisioning/web/admin/ignored_input.py)."""

from __future__ import annotations

import uuid

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from provisioning.models import AuditEvent, ProvisioningJob
from tests.factories import make_auth_user

pytestmark = pytest.mark.django_db

USERS = "admin:provisioning_authuser_changelist"
AUDIT = "admin:provisioning_auditevent_changelist"
APP_TABLES = (
    "admin:provisioning_appuser_changelist",
    "admin:provisioning_profile_changelist",
    "admin:provisioning_wallet_changelist",
)


def said(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def shown(response) -> list:
    return list(response.context["cl"].result_list)


def _audit_event(**fields) -> AuditEvent:
    values = {
        "actor_username": "alice",
        "channel": AuditEvent.Channel.WEB,
        "action": AuditEvent.Action.PROVISION_USER,
        "outcome": AuditEvent.Outcome.SUCCEEDED,
        **fields,
    }
    return AuditEvent.objects.create(**values)


# --- the auth-user list ---------------------------------------------------------------------


def test_a_page_past_the_last_shows_the_first_page_and_says_so(viewer_client):
    for _ in range(51):  # two pages of 50
        make_auth_user(keep=())

    response = viewer_client.get(reverse(USERS), {"p": "999"})

    assert response.status_code == 200
    assert len(shown(response)) == 50
    assert said(response) == ["There is no page 999 of this list: showing the first page."]


def test_a_page_past_the_last_of_a_one_page_list_is_said_too(viewer_client):
    make_auth_user(keep=())

    response = viewer_client.get(reverse(USERS), {"p": "5"})

    assert response.status_code == 200
    assert said(response) == ["There is no page 5 of this list: showing the first page."]


def test_a_page_that_is_not_a_number_is_said(viewer_client):
    make_auth_user(keep=())

    response = viewer_client.get(reverse(USERS), {"p": "abc"})

    assert response.status_code == 200
    assert said(response) == ["“p=abc” in the address is not a page number: showing the first page."]


def test_an_unknown_parameter_is_named_and_the_rest_of_the_address_still_applies(viewer_client):
    missing = make_auth_user(keep=())
    make_auth_user()  # fully provisioned: filtered out

    response = viewer_client.get(reverse(USERS), {"foo": "bar", "status": "missing_any"})

    assert response.status_code == 200
    assert [u.pk for u in shown(response)] == [missing]
    assert said(response) == ["“foo=bar” in the address is not a filter this list can use: it was ignored."]
    # The list's own links no longer carry it.
    assert "foo=bar" not in response.context["cl"].get_query_string()


def test_a_page_marker_on_a_list_paged_by_number_is_said(viewer_client):
    user = make_auth_user(keep=())

    response = viewer_client.get(reverse(USERS), {"after": "garbage"})

    assert response.status_code == 200
    assert [u.pk for u in shown(response)] == [user]
    assert said(response) == [
        "“after=garbage” in the address is not a page marker of this list: showing the first page."
    ]


def test_an_address_without_odd_input_says_nothing(viewer_client):
    make_auth_user(keep=())

    response = viewer_client.get(reverse(USERS), {"status": "missing_any", "q": "example.com"})

    assert response.status_code == 200
    assert said(response) == []


# --- the audit list ---------------------------------------------------------------------------


def test_an_action_that_is_not_a_choice_is_named_and_the_log_is_shown(viewer_client):
    _audit_event()

    response = viewer_client.get(reverse(AUDIT), {"action__exact": "bogus"})

    assert response.status_code == 200
    assert len(shown(response)) == AuditEvent.objects.count() >= 1
    (message,) = said(response)
    assert message.startswith("“bogus” is not a choice of the “action” filter (")
    assert "provision_user" in message and message.endswith("it was ignored.")


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ({"created_at__gte": "not-a-date"}, "“created_at__gte=not-a-date”"),
        ({"client_address": "notanip"}, "“client_address=notanip”"),  # the database refuses it
        ({"created_at__year": "99999"}, "“created_at__year=99999”"),
        ({"foo": "bar"}, "“foo=bar”"),
    ],
)
@pytest.mark.django_db(transaction=True)  # as in production: each request in autocommit
def test_an_unusable_audit_filter_is_named_and_the_log_is_shown(viewer_client, query, named):
    _audit_event()

    response = viewer_client.get(reverse(AUDIT), {**query, "outcome__exact": "succeeded"})

    assert response.status_code == 200
    assert len(shown(response)) >= 1
    assert said(response) == [f"{named} in the address is not a filter this list can use: it was ignored."]
    assert response.context["cl"].get_query_string() == "?outcome__exact=succeeded"


def test_the_audit_export_with_an_unusable_filter_goes_back_to_the_list_that_names_it(viewer_client):
    response = viewer_client.get(reverse("admin:provisioning_auditevent_export"), {"created_at__gte": "not-a-date"})

    assert response.status_code == 302
    assert response["Location"] == reverse(AUDIT) + "?created_at__gte=not-a-date"
    listed = viewer_client.get(response["Location"])
    assert said(listed) == [
        "“created_at__gte=not-a-date” in the address is not a filter this list can use: it was ignored."
    ]
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.EXPORT_AUDIT).exists()


# --- the jobs list and the app tables ---------------------------------------------------------


def test_the_jobs_list_names_what_it_ignored(viewer_client):
    ProvisioningJob.objects.create(created_by_username="support", batch_size=50, run_id=uuid.uuid4())

    response = viewer_client.get(reverse("provisioning_jobs"), {"state": "bogus", "p": "999"})

    assert response.status_code == 200
    assert len(response.context["jobs"]) == 1
    assert said(response) == [
        "“state=bogus” in the address was ignored: this list shows the 50 newest jobs.",
        "“p=999” in the address was ignored: this list shows the 50 newest jobs.",
    ]


@pytest.mark.parametrize("changelist", APP_TABLES)
def test_the_app_table_lists_name_what_they_ignored(viewer_client, changelist):
    make_auth_user()

    unknown = viewer_client.get(reverse(changelist), {"foo": "bar"})
    past_the_end = viewer_client.get(reverse(changelist), {"p": "999"})

    assert unknown.status_code == past_the_end.status_code == 200
    assert len(shown(unknown)) >= 1 and len(shown(past_the_end)) >= 1
    assert said(unknown) == ["“foo=bar” in the address is not a filter this list can use: it was ignored."]
    assert said(past_the_end) == ["There is no page 999 of this list: showing the first page."]


def test_the_audit_export_of_an_action_that_is_not_a_choice_goes_back_to_the_list(viewer_client):
    _audit_event()

    response = viewer_client.get(reverse("admin:provisioning_auditevent_export"), {"action__exact": "bogus"})

    assert response.status_code == 302
    assert response["Location"] == reverse(AUDIT) + "?action__exact=bogus"
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.EXPORT_AUDIT).exists()


@pytest.mark.parametrize(
    "url",
    [
        "admin:provisioning_authuser_changelist",
        "admin:provisioning_wallet_changelist",
        "admin:provisioning_auditevent_changelist",
    ],
)
def test_a_page_number_in_another_script_is_said_not_a_silent_redirect(viewer_client, url):
    response = viewer_client.get(reverse(url), {"p": "²"})

    assert response.status_code == 200
    assert "“p=²” in the address is not a page number: showing the first page." in said(response)


def test_an_address_stuffed_with_junk_costs_a_few_list_builds_not_one_per_key(
    viewer_client, django_assert_max_num_queries
):
    junk = {f"junk{i}": "x" for i in range(900)}

    with django_assert_max_num_queries(150):
        response = viewer_client.get(reverse("admin:provisioning_auditevent_changelist"), junk)

    assert response.status_code == 200
    assert "880 more parameters in the address were ignored (a list looks at 20 at most)." in said(response)


def test_an_audit_event_id_in_another_script_is_a_404(viewer_client):
    assert viewer_client.get("/admin/provisioning/auditevent/%C2%B2/change/").status_code == 404


@pytest.mark.parametrize("order", ["garbage", "99", "1.x"])
def test_an_order_that_names_no_column_is_said(viewer_client, order):
    response = viewer_client.get(reverse(AUDIT), {"o": order})

    assert response.status_code == 200
    assert f"“o={order}” in the address is not an order of this list's columns: it was ignored." in said(response)


def test_a_usable_order_says_nothing(viewer_client):
    response = viewer_client.get(reverse(AUDIT), {"o": "-1"})

    assert response.status_code == 200
    assert not [m for m in said(response) if "o=" in m]
