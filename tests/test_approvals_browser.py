"""The two-person rule in Chromium: staff member A asks for an orphan removal with a
reason, staff member B finds it on the home page and approves it, and it runs once
(screenshots in test-artifacts/screenshots/approval_*.png)."""

from __future__ import annotations

import pytest

from provisioning.drift import selectors as drift_selectors
from provisioning.models import ApprovalRequest, AuditEvent
from tests.browser_layout import assert_tables_line_up
from tests.test_web_browser import (  # noqa: F401 - fixtures
    PROVISIONER,
    WCAG_21_AA,
    browser,
    demo_data,
    log_in,
    page,
    screenshot,
    success_messages,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SECOND = ("browser-prov-b", "browser-prov-b-password-1")


@pytest.fixture
def two_removers(demo_data, django_user_model):  # noqa: F811
    from django.contrib.auth.models import Group, Permission

    from provisioning.groups import PROVISIONERS

    remove = Permission.objects.get(codename="remove_orphans")
    django_user_model.objects.get(username=PROVISIONER[0]).user_permissions.add(remove)
    second = django_user_model.objects.create_user(SECOND[0], password=SECOND[1], is_staff=True)
    second.groups.add(Group.objects.get(name=PROVISIONERS))
    second.user_permissions.add(remove)


def test_staff_a_asks_for_an_orphan_removal_and_staff_b_approves_it(page, live_server, two_removers):  # noqa: F811
    total = sum(v["count"] for v in drift_selectors.orphaned_rows().values())
    assert total > 0, "the demo has orphaned rows"

    # A: the removal, confirmed with a reason, becomes a request; nothing is removed.
    log_in(page, live_server, PROVISIONER)
    page.goto(f"{live_server.url}/admin/provisioning/authuser/orphans/")
    page.click("#remove-orphans-button")
    page.wait_for_selector("#confirm-orphan-removal")
    assert "second staff member" in page.locator("#orphans-approval-note").inner_text()
    page.fill("#id_reason", "Ticket 311: these users deleted their accounts last week")
    page.click("#confirm-remove-orphans-button")
    page.wait_for_selector("#approval-request")
    request = ApprovalRequest.objects.get()
    assert page.locator("#approval-state").inner_text() == "Waiting for approval"
    assert "another staff member" in page.locator("#approval-own").inner_text()
    assert page.locator("#approve-button").count() == 0
    assert_tables_line_up(page)
    screenshot(page, "approval_asked")
    assert sum(v["count"] for v in drift_selectors.orphaned_rows().values()) == total

    # B: sees it waiting on the home page, opens it, approves it.
    page.context.clear_cookies()
    log_in(page, live_server, SECOND)
    waiting = page.locator("#home-approvals")
    assert f"#{request.pk} Remove {total} orphaned rows" in waiting.inner_text()
    waiting.scroll_into_view_if_needed()
    screenshot(page, "approval_home_waiting")
    waiting.get_by_role("link", name=f"#{request.pk} Remove").click()
    page.wait_for_selector("#approval-decide")
    assert "Ticket 311" in page.locator("#approval-reason").inner_text()
    page.fill("#id_reason", "Checked the sample: all gone from auth")
    screenshot(page, "approval_to_decide")
    from axe_playwright_python.sync_playwright import Axe

    violations = Axe().run(page, options={**WCAG_21_AA, "resultTypes": ["violations"]}).response["violations"]
    assert [v["id"] for v in violations] == []
    page.click("#approve-button")
    page.wait_for_selector("#approval-result")

    (message,) = success_messages(page)
    assert message.startswith(f"Approved and ran: Removed {total} orphaned row(s): ")
    assert page.locator("#approval-state").inner_text() == "Approved and ran"
    assert "browser-prov-b" in page.locator("#approval-decided-by").inner_text()
    assert_tables_line_up(page)
    screenshot(page, "approval_ran")
    assert drift_selectors.orphaned_rows() == {}
    assert AuditEvent.objects.filter(action=AuditEvent.Action.REMOVE_ORPHANS, outcome="succeeded").count() == 1
    steps = AuditEvent.objects.filter(detail__request_id=request.pk).order_by("id")
    assert [(e.action, e.actor_username) for e in steps] == [
        ("approval_requested", PROVISIONER[0]),
        ("approval_approved", SECOND[0]),
        ("approval_ran", SECOND[0]),
    ]

    page.goto(f"{live_server.url}/admin/provisioning/approvalrequest/")
    assert "Approved and ran" in page.locator("#result_list").inner_text()
    assert_tables_line_up(page)
