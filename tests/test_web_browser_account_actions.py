"""Fixing an account in a real browser (issue 26): a support account admin bans a user from
the user's page, with a reason, against the Auth stand-in."""

from __future__ import annotations

import pytest

from provisioning.models import AuditEvent
from tests.account_rows import add_session
from tests.auth_standin import auth_standin  # noqa: F401 - fixture
from tests.factories import make_auth_user
from tests.test_account_actions import auth_row, sessions
from tests.test_web_browser import browser, log_in, page, screenshot  # noqa: F401 - fixtures

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

FIXER = ("browser-fixer", "browser-fixer-password-1")


@pytest.fixture
def fixer(support_groups, django_user_model):
    from django.contrib.auth.models import Group

    from provisioning.groups import ACCOUNT_ADMINS

    user = django_user_model.objects.create_user(FIXER[0], password=FIXER[1], is_staff=True)
    user.groups.add(Group.objects.get(name=ACCOUNT_ADMINS))
    return user


def test_an_account_admin_bans_a_user_from_the_page_with_a_reason(page, live_server, auth_standin, fixer):  # noqa: F811
    user = make_auth_user("spammer@example.com")
    add_session(user)
    add_session(user, agent="Mozilla/5.0 (X11; Linux x86_64) Firefox/126.0")
    log_in(page, live_server, FIXER)
    page.goto(f"{live_server.url}/admin/provisioning/authuser/{user}/change/")

    page.locator("#account-actions").scroll_into_view_if_needed()
    screenshot(page, "account_actions", docs=True)
    form = page.locator("#account-ban")
    form.locator("#ban-duration").select_option("7d")
    form.get_by_label("Reason").fill("Ticket 5512: sending spam to other members")
    form.get_by_role("button", name="Ban").click()
    page.locator(".messagelist .success").wait_for()

    message = page.locator(".messagelist").inner_text()
    assert "Banned until" in message and "signed out of 2 session(s)" in message
    assert "Access tokens already issued keep working" in message and "1 h" in message
    assert "Banned until" in page.locator("#account-summary").inner_text()
    assert auth_row(user)["banned_until"] is not None and sessions(user) == 0
    event = AuditEvent.objects.get(action=AuditEvent.Action.ACCOUNT_BAN)
    assert event.actor_username == FIXER[0] and event.detail["reason"].startswith("Ticket 5512")
    assert "reason: Ticket 5512" in page.locator("#audit-history").inner_text()
    page.locator("#account-actions").scroll_into_view_if_needed()
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "account_ban", docs=True)
