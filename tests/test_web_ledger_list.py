"""The list's "Missing anything", "Fully provisioned" and "Cannot be provisioned" read the
provisioning ledger (issue 24, part 2) and check the page's rows live: a user changed since
the ledger's watermark is shown as they are now, and the page says when the ledger is behind."""

from __future__ import annotations

import uuid

import pytest
from django.urls import reverse

from provisioning.engine import ledger, selectors
from tests.factories import disable_trigger, execute, give_rows, make_auth_user

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:provisioning_authuser_changelist"


def listing(client, status: str):
    response = client.get(reverse(CHANGELIST), {"status": status})
    assert response.status_code == 200
    return {obj.pk for obj in response.context["cl"].result_list}, response.content.decode()


@pytest.fixture
def population():
    return {
        "complete": make_auth_user(),
        "no_profile": make_auth_user(keep=("users", "wallets")),
        "nothing": make_auth_user(keep=()),
        "phone_only": make_auth_user(None, phone="15550003", keep=()),
        "deleted": make_auth_user(deleted=True, keep=()),
    }


def drop_key_indexes() -> None:
    execute("DROP INDEX public.profiles_user_id_key; ALTER TABLE public.wallets DROP CONSTRAINT wallets_user_id_key")
    assert not selectors.keys_indexed()


def live(status: str) -> set[uuid.UUID]:
    q = {
        "missing_any": selectors.missing_any_q(),
        "complete": selectors.complete_q(),
        "cannot": selectors.cannot_be_provisioned_q(),
    }[status]
    return set(selectors.population().filter(q).values_list("pk", flat=True))


@pytest.mark.parametrize("key_indexes", [True, False], ids=["key-indexes", "no-key-index"])
@pytest.mark.parametrize("status", ["missing_any", "complete", "cannot"])
def test_a_caught_up_ledger_lists_exactly_the_live_users(viewer_client, population, status, key_indexes):
    if not key_indexes:
        drop_key_indexes()
    ledger.rebuild()
    if key_indexes:
        make_auth_user(keep=("users",))  # a sign-up since the watermark: checked live
    else:  # the trigger needs the unique keys: the sign-up's row is written by hand
        disable_trigger()
        give_rows(make_auth_user(keep=()), ["users"])
    ids, html = listing(viewer_client, status)
    assert 'id="ledger-note"' in html and "Listed from the provisioning ledger, as of" in html
    assert ids == live(status)
    assert 'id="ledger-behind"' not in html


def test_with_key_indexes_a_user_fixed_by_the_app_since_the_ledger_is_not_listed(viewer_client, population):
    ledger.rebuild()
    give_rows(population["no_profile"], ["profiles"])  # the app's own write: not in the ledger yet
    ids, html = listing(viewer_client, "missing_any")
    assert "Listed from the provisioning ledger" in html
    assert ids == live("missing_any") == {population["nothing"], population["phone_only"]}
    ids, _ = listing(viewer_client, "complete")
    assert ids == {population["complete"]}  # until the ledger catches up
    ledger.catch_up()
    ids, _ = listing(viewer_client, "complete")
    assert ids == live("complete") == {population["complete"], population["no_profile"]}


def test_without_key_indexes_a_changed_user_is_shown_as_now_and_the_page_says_the_ledger_is_behind(
    viewer_client, population
):
    drop_key_indexes()
    ledger.rebuild()
    give_rows(population["no_profile"], ["profiles"])  # the app's own write
    response = viewer_client.get(reverse(CHANGELIST), {"status": "missing_any"})
    rows = {user.pk: user for user in response.context["cl"].result_list}
    assert population["no_profile"] in rows and rows[population["no_profile"]].has_profile is True
    html = response.content.decode()
    assert 'id="ledger-behind"' in html and "1 user on this page changed since then" in html
    ledger.catch_up()
    ids, html = listing(viewer_client, "missing_any")
    assert ids == live("missing_any") and 'id="ledger-behind"' not in html


def test_without_a_ledger_the_lists_count_live_and_say_nothing_of_a_ledger(viewer_client, population):
    ids, html = listing(viewer_client, "missing_any")
    assert ids == live("missing_any") and 'id="ledger-note"' not in html
