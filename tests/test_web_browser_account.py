"""Support tickets answered from the whole account (issue 25), in a real browser: from the
search box to the answer on the user's page, on the demo's Auth tables."""

from __future__ import annotations

import re

import pytest

from tests.test_web_browser import (  # noqa: F401 - fixtures
    VIEWER,
    browser,
    demo_data,
    log_in,
    page,
    screenshot,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def search(page, live_server, term: str) -> list[str]:  # noqa: F811
    page.goto(f"{live_server.url}/admin/provisioning/authuser/")
    page.fill("#searchbar", term)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"q="))
    return page.locator("#result_list tbody tr").all_inner_texts()


def open_user(page, name: str) -> None:  # noqa: F811
    page.locator("#result_list tbody th a", has_text=name).first.click()
    page.locator("#account-summary").wait_for()


def test_ticket_i_never_got_the_confirmation_email(page, live_server, demo_data):  # noqa: F811
    log_in(page, live_server, VIEWER)
    assert len(search(page, live_server, "member21@example.org")) == 1
    open_user(page, "member21@example.org")

    summary = page.locator("#account-summary").inner_text()
    assert "Not confirmed: confirmation email sent" in summary and "never signed in" in summary
    timeline = page.locator("#timeline")
    assert timeline.get_by_text("was sent a confirmation email").count() == 2
    assert timeline.get_by_text("signed in with", exact=False).count() == 0
    screenshot(page, "account_unconfirmed", docs=True)


def test_ticket_i_signed_in_with_google_and_now_i_have_two_accounts(page, live_server, demo_data):  # noqa: F811
    log_in(page, live_server, VIEWER)
    # The search finds both: one by its email, the other by its Google identity's email.
    assert len(search(page, live_server, "member56@example.org")) == 2
    open_user(page, "member56@example.org")

    methods = page.locator("#sign-in-methods")
    assert "Another account signed up with this email through Google" in methods.inner_text()
    methods.locator(".duplicate-account").scroll_into_view_if_needed()
    screenshot(page, "account_duplicate", docs=True)

    methods.get_by_role("link", name=re.compile("user ")).click()
    page.locator("#account-summary").wait_for()
    assert "signs in with phone, Google" in page.locator("#account-summary").inner_text()
    assert "member56@example.org" in page.locator("#sign-in-methods").inner_text()
    assert page.locator("#timeline").get_by_text("signed in with Google").count() == 1


def test_ticket_i_lost_my_authenticator(page, live_server, demo_data):  # noqa: F811
    log_in(page, live_server, VIEWER)
    search(page, live_server, "member17@example.org")
    open_user(page, "member17@example.org")

    assert "MFA on" in page.locator("#account-summary").inner_text()
    factors = page.locator("#mfa-factors").inner_text()
    assert "Authenticator app" in factors and "verified" in factors
    assert "aal2 (with MFA)" in page.locator("#sessions").inner_text()
    page.locator("#mfa-factors").scroll_into_view_if_needed()
    screenshot(page, "account_mfa", docs=True)


def test_ticket_it_says_i_am_banned_and_who_did_it(page, live_server, demo_data):  # noqa: F811
    log_in(page, live_server, VIEWER)
    search(page, live_server, "member101@example.org")
    open_user(page, "member101@example.org")

    assert "Banned until" in page.locator("#account-summary").inner_text()
    page.locator("#timeline-filters").get_by_role("link", name="Changes made by staff").click()
    page.wait_for_url(re.compile(r"timeline=staff"))
    timeline = page.locator("#timeline").inner_text()
    assert "account changed" in timeline and "the admin API (service_role)" in timeline
    assert "signed in" not in timeline
    page.locator("#timeline").scroll_into_view_if_needed()
    screenshot(page, "account_banned_timeline")
