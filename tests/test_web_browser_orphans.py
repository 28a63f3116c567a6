"""The orphaned rows page in Chromium: dates as elsewhere, the secret columns named before
the click, and a second confirmation naming the row count (screenshots in
test-artifacts/screenshots/)."""

from __future__ import annotations

import pytest

from provisioning.drift import selectors as drift_selectors
from tests.test_web_browser import (  # noqa: F401 - fixtures
    PROVISIONER,
    browser,
    demo_data,
    log_in,
    page,
    screenshot,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_removing_orphans_takes_a_second_confirmation_naming_the_count(page, live_server, demo_data, settings):  # noqa: F811
    from django.contrib.auth.models import Permission, User

    # A one-person team's removal; with approvals on it is a request (test_approvals_browser.py).
    settings.APPROVALS = False

    User.objects.get(username=PROVISIONER[0]).user_permissions.add(Permission.objects.get(codename="remove_orphans"))
    total = sum(v["count"] for v in drift_selectors.orphaned_rows().values())
    assert total > 0, "the demo has orphaned rows"
    log_in(page, live_server, PROVISIONER)

    page.goto(f"{live_server.url}/admin/provisioning/authuser/orphans/")
    created = page.locator("table.orphan-rows tbody tr td:nth-child(3)").first.inner_text()
    assert "UTC" in created and "T" not in created.split(",")[0]  # "4 Dec 2026, 14:02 UTC"
    help_text = page.locator("#orphans-removal-note").inner_text()
    assert "public.wallets.backup_seed" in help_text and "cannot be put back" in help_text
    page.locator("#remove-orphans-button").scroll_into_view_if_needed()
    screenshot(page, "orphans_page")

    page.click("#remove-orphans-button")
    page.wait_for_selector("#confirm-orphan-removal")
    heading = page.locator("#confirm-orphan-removal h2").inner_text()
    assert heading == f"Remove {total} orphaned rows for good?"
    assert page.locator("#confirm-remove-orphans-button").get_attribute("value") == f"Yes, remove {total} rows"
    screenshot(page, "orphans_confirm")
    assert sum(v["count"] for v in drift_selectors.orphaned_rows().values()) == total  # nothing removed yet

    page.click("#confirm-remove-orphans-button")
    page.wait_for_selector("#no-orphans")
    assert drift_selectors.orphaned_rows() == {}
