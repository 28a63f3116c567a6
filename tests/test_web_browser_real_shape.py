"""The user's page and the app-table lists in a real browser, on the Eloity app's own
tables (tests/sql/eloity_migration_shape.sql): what a support person sees there, with
screenshots under test-artifacts/screenshots/ (real_shape_*.png).

The live server commits, so the schema change is undone afterwards: the demo tables are
dropped and installed again.
"""

from __future__ import annotations

import pytest

from provisioning import demo
from tests.factories import give_rows, make_auth_user, make_eloity_migration_shape, truncate_app_tables
from tests.test_web_browser import browser, page, screenshot  # noqa: F401 - fixtures

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ADMIN = ("browser-admin", "browser-admin-password-1")


@pytest.fixture
def real_shape_people(django_user_model):
    truncate_app_tables()
    full = make_auth_user("full-account@example.com", keep=())
    partial = make_auth_user("no-wallet@example.com", keep=())
    bare = make_auth_user("nothing-yet@example.com", keep=())
    make_eloity_migration_shape()
    give_rows(full, ("users", "profiles", "wallets"), email="full-account@example.com")
    give_rows(partial, ("users", "profiles"), email="no-wallet@example.com")
    django_user_model.objects.create_superuser(ADMIN[0], password=ADMIN[1])
    yield {"full": full, "partial": partial, "bare": bare}
    demo.drop_demo_tables()
    demo.install_schema()
    truncate_app_tables()


def log_in(tab, live_server) -> None:
    tab.goto(f"{live_server.url}/admin/login/")
    tab.fill("#id_username", ADMIN[0])
    tab.fill("#id_password", ADMIN[1])
    tab.click("input[type=submit]")
    tab.wait_for_url(f"{live_server.url}/admin/")


def test_a_user_page_and_the_app_lists_on_the_migrations_tables(page, live_server, real_shape_people):  # noqa: F811
    log_in(page, live_server)

    page.goto(f"{live_server.url}/admin/provisioning/authuser/{real_shape_people['partial']}/change/")
    rows = page.locator("#provisioning-status tbody tr")
    assert rows.count() == 3
    assert "present" in rows.nth(0).inner_text() and "no-wallet@example.com" in rows.nth(0).inner_text()
    assert "present" in rows.nth(1).inner_text()
    assert "missing" in rows.nth(2).inner_text()
    rows.nth(0).locator("summary").click()
    details = rows.nth(0).locator("details")
    assert (
        "email_confirmed" in details.inner_text() and "Not shown (they look secret): password" in details.inner_text()
    )
    assert "a-hash-the-app-wrote" not in page.content()
    screenshot(page, "real_shape_user_page")

    page.goto(f"{live_server.url}/admin/provisioning/appuser/")
    headers = [h.strip().lower() for h in page.locator("#result_list thead th").all_inner_texts()]
    assert headers[1:] == ["email", "email confirmed", "created at", "updated at"]
    assert page.locator("#result_list tbody tr").count() == 2
    screenshot(page, "real_shape_app_users")

    page.goto(f"{live_server.url}/admin/provisioning/wallet/")
    assert page.locator("#result_list tbody tr").count() == 1
    assert "backup_seed" in page.locator("#withheld-columns").inner_text()
    screenshot(page, "real_shape_wallets")
