"""The support path in a real browser: headless Chromium (Debian's) driven by Playwright,
against pytest-django's live server on the real test database.

Every test saves a screenshot under test-artifacts/screenshots/. With
UPDATE_SCREENSHOTS=1 the key screens are also written to docs/screenshots/, which the
README shows: `UPDATE_SCREENSHOTS=1 .venv/bin/python -m pytest -m browser`.

The live server commits: each test seeds the demo sign-ups itself and empties auth.users
and the app tables afterwards (`clean_app_tables`).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from django.core.cache import cache

from provisioning import demo
from provisioning.engine import selectors
from tests.browser_layout import assert_tables_line_up, table_layout_problems, watch_table_layout
from tests.factories import count, truncate_app_tables

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 800}
ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts" / "screenshots"
DOCS_SCREENSHOTS = ROOT / "docs" / "screenshots"
INCIDENT_ADDRESSES = demo.INCIDENT_EMAILS
PROVISIONER = ("browser-prov", "browser-prov-password-1")
VIEWER = ("browser-view", "browser-view-password-1")
TIMEOUT_MS = 20_000


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (make test does this)")
    # Playwright's sync API runs an event loop in this thread; the ORM calls the tests
    # make between browser steps are ordinary synchronous calls.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page(browser):
    """A page that fails its test if anything it loaded broke the Content-Security-Policy, or
    had a table whose rows do not line up with its header (tests/browser_layout.py)."""
    context = browser.new_context(viewport=VIEWPORT, timezone_id="UTC", locale="en-US")
    context.set_default_timeout(TIMEOUT_MS)
    misaligned = watch_table_layout(context)
    page = context.new_page()
    violations: list[str] = []
    page.on(
        "console",
        lambda message: violations.append(message.text) if "Content Security Policy" in message.text else None,
    )
    page.csp_violations = violations
    yield page
    if page.url.startswith("http"):
        misaligned += [f"{page.url}: {problem}" for problem in table_layout_problems(page)]
    context.close()
    assert violations == [], "the Content-Security-Policy blocked something on the page"
    assert misaligned == [], "tables that do not line up with their header:\n" + "\n".join(dict.fromkeys(misaligned))


@pytest.fixture
def demo_data(clean_app_tables, support_groups, django_user_model):
    """200 demo sign-ups (with the incident's seven addresses) and two staff logins."""
    from django.contrib.auth.models import Group

    from provisioning.groups import PROVISIONERS, VIEWERS

    truncate_app_tables()
    cache.clear()  # the live server runs in this process: its cached home counts too
    assert demo.seed(200) == 200
    for (username, password), group in ((PROVISIONER, PROVISIONERS), (VIEWER, VIEWERS)):
        user = django_user_model.objects.create_user(username, password=password, is_staff=True)
        user.groups.add(Group.objects.get(name=group))
    yield
    cache.clear()


def screenshot(page, name: str, *, docs: bool = False) -> Path:
    """Save the viewport; copy it to docs/screenshots when UPDATE_SCREENSHOTS=1."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), type="png")
    if docs and os.environ.get("UPDATE_SCREENSHOTS") == "1":
        DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOCS_SCREENSHOTS / f"{name}.png")
    return path


def log_in(page, live_server, credentials) -> None:
    """Through the real login form, as a person does."""
    username, password = credentials
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")


def open_missing_profiles(page) -> None:
    page.get_by_role("link", name="Auth users").first.click()
    page.locator("#changelist-filter").get_by_role("link", name="Missing profile", exact=True).click()
    page.wait_for_url(re.compile(r"status=missing_profiles"))


def user_id_of(email: str):
    return selectors.resolve_users([email])[0][0]


def success_messages(page) -> list[str]:
    return page.locator("ul.messagelist li.success").all_inner_texts()


def test_provisioner_finds_the_seven_incident_addresses(page, live_server, demo_data):
    log_in(page, live_server, PROVISIONER)
    page.locator("#home-dashboard").wait_for()
    assert page.locator("#total-missing-profiles .value").inner_text() == str(
        selectors.users_missing("profiles").count()
    )
    assert page.locator("#missing-by-week-chart .week-bar").count() >= 20
    screenshot(page, "home", docs=True)

    open_missing_profiles(page)
    listed = page.locator("#result_list tbody th a").all_inner_texts()
    for address in INCIDENT_ADDRESSES:
        assert address in listed
    # screen readers hear the state, not "True"/"False"
    assert page.locator("#result_list .status-missing .visually-hidden").first.inner_text() == "missing"
    # For the picture: the seven rows (below the fold on a 1280x800 screen) in view.
    page.get_by_role("link", name="test@example.com", exact=True).evaluate("e => e.scrollIntoView({block: 'center'})")
    screenshot(page, "list_missing_profile", docs=True)


def test_provisioner_provisions_one_user_from_the_detail_page(page, live_server, demo_data):
    user_id = user_id_of("eloityhq@gmail.com")
    assert count("profiles", [user_id]) == 0
    log_in(page, live_server, PROVISIONER)
    open_missing_profiles(page)
    page.get_by_role("link", name="eloityhq@gmail.com", exact=True).click()
    page.locator("#provisioning-status").wait_for()
    assert page.locator("#provisioning-status").get_by_text("missing", exact=True).count() == 1

    page.locator("#provision-button").focus()  # reachable by keyboard, pressed with Enter
    page.keyboard.press("Enter")
    page.locator("ul.messagelist li.success").wait_for()

    assert success_messages(page) == ["Created a profile for eloityhq@gmail.com."]
    status = page.locator("#provisioning-status")
    assert status.get_by_text("missing", exact=True).count() == 0
    assert status.get_by_text("present", exact=True).count() == 3
    assert page.locator("#all-rows-present").is_visible()
    assert page.locator("#provision-button").count() == 0
    assert [count(t, [user_id]) for t in ("users", "profiles", "wallets")] == [1, 1, 1]
    screenshot(page, "detail_after_provisioning", docs=True)


def test_provisioner_runs_the_bulk_action_through_its_confirmation(page, live_server, demo_data):
    log_in(page, live_server, PROVISIONER)
    open_missing_profiles(page)
    rows = page.locator("#result_list tbody tr")
    chosen = []
    for index in range(3):
        rows.nth(index).locator("input.action-select").check()
        chosen.append(rows.nth(index).locator("input.action-select").get_attribute("value"))
    page.select_option("select[name=action]", "provision_selected")
    page.click("button[name=index]")

    page.get_by_role("heading", name="What will be written").wait_for()
    assert "Nothing has been written yet" in page.content()
    assert sum(count("profiles", chosen) for _ in [0]) == 0
    screenshot(page, "bulk_confirmation", docs=True)

    page.get_by_role("button", name="Yes, provision these users").click()
    page.locator("ul.messagelist li.success").wait_for()
    assert count("profiles", chosen) == 3
    assert count("users", chosen) == 3 and count("wallets", chosen) == 3
    screenshot(page, "bulk_done")


def test_provisioner_provisions_all_missing_through_the_preview(page, live_server, demo_data):
    missing_before = selectors.users_missing().count()
    _, blocked = selectors.cannot_provision(sample=10_000)
    cannot = {item["user_id"] for item in blocked}
    assert missing_before > len(cannot) > 0

    log_in(page, live_server, PROVISIONER)
    page.get_by_role("link", name="Auth users").first.click()
    page.get_by_role("link", name="Provision all missing…").click()
    page.get_by_role("heading", name="What will be written").wait_for()
    assert "Nothing has been written yet" in page.content()
    assert page.locator("#dry-run-blocked").is_visible()
    assert selectors.users_missing().count() == missing_before
    screenshot(page, "provision_all_preview", docs=True)

    page.get_by_role("button", name="Provision all missing").click()
    page.wait_for_load_state()
    job = re.search(r"/admin/tools/jobs/(\d+)/", page.url)
    if job:
        # The run went to a background worker: do the worker's part here, then look again.
        from provisioning import jobs

        # The page says the job's state itself (no "queued" banner to outlive the queue).
        assert page.locator("#job-state").inner_text() in {"Queued", "Running"}
        jobs.run_job(int(job.group(1)))
        page.reload()
        # Some demo sign-ups cannot be provisioned: the job says so, as its audit events do.
        assert page.locator("#job-state").inner_text() == "Partly succeeded"
        assert not success_messages(page)
    else:
        assert success_messages(page)
    screenshot(page, "provision_all_done")
    assert selectors.users_missing().count() == len(cannot)


def test_the_audit_log_shows_what_was_done(page, live_server, demo_data):
    log_in(page, live_server, PROVISIONER)
    open_missing_profiles(page)
    page.get_by_role("link", name="test@example.com", exact=True).click()
    page.click("#provision-button")
    page.locator("ul.messagelist li.success").wait_for()

    open_missing_profiles(page)
    page.locator("#result_list tbody tr").nth(0).locator("input.action-select").check()
    page.locator("#result_list tbody tr").nth(1).locator("input.action-select").check()
    page.select_option("select[name=action]", "provision_selected")
    page.click("button[name=index]")
    page.get_by_role("button", name="Yes, provision these users").click()
    page.locator("ul.messagelist li.success").wait_for()

    page.goto(f"{live_server.url}/admin/provisioning/auditevent/")
    table = page.locator("#result_list")
    table.wait_for()
    text = table.inner_text()
    assert "Provision one user" in text or "provision_user" in text
    assert "Provision selected users" in text or "provision_selected" in text
    assert PROVISIONER[0] in text
    screenshot(page, "audit_log", docs=True)

    # the home page lists the same events, each linking to it
    page.goto(f"{live_server.url}/admin/")
    events = page.locator("#home-audit-events li a")
    assert events.count() >= 2
    events.first.click()
    page.wait_for_url(re.compile(r"/admin/provisioning/auditevent/\d+/"))


def test_a_viewer_sees_the_list_but_cannot_provision(page, live_server, demo_data):
    user_id = user_id_of("solozikedi@gmail.com")
    log_in(page, live_server, VIEWER)
    open_missing_profiles(page)
    assert "solozikedi@gmail.com" in page.locator("#result_list").inner_text()
    assert page.get_by_role("link", name="Provision all missing…").count() == 0
    assert page.locator("select[name=action] option[value=provision_selected]").count() == 0

    page.get_by_role("link", name="solozikedi@gmail.com", exact=True).click()
    page.locator("#provisioning-status").wait_for()
    assert page.locator("#provision-button").count() == 0
    assert "Ask a member of “Support provisioners”" in page.content()
    screenshot(page, "viewer_detail")

    status = page.evaluate(
        """async (url) => {
            const token = document.cookie.split('; ').find(c => c.startsWith('csrftoken=')).split('=')[1];
            const response = await fetch(url, {method: 'POST', headers: {'X-CSRFToken': token},
                                               credentials: 'same-origin'});
            return response.status;
        }""",
        f"/admin/provisioning/authuser/{user_id}/provision/",
    )
    assert status == 403
    assert count("profiles", [user_id]) == 0


def test_pages_work_under_the_content_security_policy(page, live_server, demo_data):
    """Scripts run from our static files only; the job page's polling and the copy buttons
    work with script-src 'self' (no inline script), and nothing is refused."""
    from playwright.sync_api import expect

    from provisioning import jobs

    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    log_in(page, live_server, PROVISIONER)
    response = page.goto(f"{live_server.url}/admin/provisioning/authuser/")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]

    # A copy button: the script swaps its label once it has copied.
    page.goto(f"{live_server.url}/admin/provisioning/authuser/{user_id_of(INCIDENT_ADDRESSES[0])}/change/")
    button = page.locator("button.copy-id").first
    button.click()
    page.locator("button.copy-id[data-copied]").first.wait_for()
    assert page.locator("button.copy-id .copy-id-text").first.inner_text() in {"copied", "select and copy"}

    # The job page polls its status.json: the worker's progress shows without a reload.
    page.goto(f"{live_server.url}/admin/provisioning/authuser/")
    page.get_by_role("link", name="Provision all missing…").click()
    page.get_by_role("button", name="Provision all missing").click()
    page.wait_for_url(re.compile(r"/admin/tools/jobs/\d+/"))
    job_id = int(re.search(r"/admin/tools/jobs/(\d+)/", page.url).group(1))
    assert page.locator("#job-state").inner_text() != "Succeeded"
    jobs.run_job(job_id)
    # Some demo sign-ups cannot be provisioned: a finished job with failures partly succeeded.
    expect(page.locator("#job-state")).to_have_text("Partly succeeded")
    assert page.locator("#job-batches").inner_text() == page.locator("#job-total-batches").inner_text()
    assert page.csp_violations == []


#: How every time reads on the dashboard: `12 Aug 2026, 11:24 UTC`.
ONE_TIME_FORMAT = re.compile(r"^\d{1,2} [A-Z][a-z]{2} \d{4}, \d{2}:\d{2} [A-Z]{2,5}$")


def test_the_detail_page_and_the_list_read_cleanly_at_1280_px(page, live_server, demo_data):
    """No empty section bands, one date format with UTC on hover, plain yes/no for facts,
    a list whose ✓/✗ columns and times fit the screen."""
    log_in(page, live_server, PROVISIONER)
    page.goto(f"{live_server.url}/admin/provisioning/authuser/{user_id_of(INCIDENT_ADDRESSES[1])}/change/")

    headings = page.locator("#content-main h2")
    heights = [headings.nth(i).bounding_box()["height"] for i in range(headings.count())]
    assert heights and max(heights) < 50, heights  # each band holds its title, nothing more
    assert page.locator("a.historylink").get_attribute("href") == "#audit-history"
    times = page.locator("#content-main time")
    assert times.count() >= 3
    for i in range(times.count()):
        assert ONE_TIME_FORMAT.match(times.nth(i).inner_text().strip()), times.nth(i).inner_text()
        assert times.nth(i).get_attribute("title").endswith(" UTC")
    content = page.locator("#content-main").inner_text()
    assert "a.m." not in content and "p.m." not in content
    for label in ("Anonymous", "SSO user"):
        row = page.locator(".form-row", has_text=label)
        assert row.locator(".readonly").inner_text().strip() == "no"
        assert row.locator("img").count() == 0  # no red ✗ for a normal user
    screenshot(page, "detail_before_provisioning")

    page.goto(f"{live_server.url}/admin/provisioning/authuser/?status=missing_profiles")
    table = page.locator("#result_list").bounding_box()
    assert table["width"] > 0.6 * VIEWPORT["width"], table
    container = page.locator("#changelist .results").bounding_box()
    assert table["width"] <= container["width"] + 1  # nothing scrolled out of sight
    first_time = page.locator("#result_list td.field-signed_up time").first
    assert first_time.bounding_box()["height"] < 25  # one line, not three
    screenshot(page, "list_missing_profile_wide")


@pytest.fixture
def chained_demo(demo_data):
    """The demo on the chained shape (`load_demo --shape chained`), undone afterwards: the
    live server commits, so the shape's DDL would otherwise outlive the test."""
    from tests.factories import execute, make_chained_shape

    make_chained_shape()
    cache.clear()
    yield
    execute(
        "ALTER TABLE public.profiles DROP CONSTRAINT IF EXISTS profiles_user_id_users_fkey;"
        "ALTER TABLE public.wallets DROP CONSTRAINT IF EXISTS wallets_user_id_users_fkey;"
        "ALTER TABLE public.users DROP COLUMN IF EXISTS password"
    )


def test_the_home_page_counts_people_and_the_drifted_list_shows_both_values(page, live_server, chained_demo):
    from tests.factories import execute

    blocked = selectors.population().filter(selectors.cannot_be_provisioned_q()).count()
    rows = sum(selectors.cannot_provision(sample=0)[0].values())
    assert rows > blocked > 0  # on this shape a blocked user lacks several rows
    log_in(page, live_server, PROVISIONER)
    page.locator("#home-dashboard").wait_for()
    card = page.locator("#total-cannot-provision")
    assert card.locator(".value").inner_text() == str(blocked)
    assert f"{rows} missing rows" in card.inner_text()
    card.evaluate("e => e.scrollIntoView({block: 'start'})")
    screenshot(page, "home_chained_counts")
    page.locator("#home-cannot-provision").evaluate("e => e.scrollIntoView({block: 'start'})")
    screenshot(page, "home_chained_cannot_provision")
    card.click()
    page.wait_for_url(re.compile(r"status=cannot"))
    assert page.locator("#result_list tbody tr").count() == min(blocked, 50)

    moved = user_id_of(INCIDENT_ADDRESSES[0])
    execute("UPDATE auth.users SET email = 'moved-on@example.com' WHERE id = %s", [moved])
    page.goto(f"{live_server.url}/admin/provisioning/authuser/?status=drifted&recheck=1")
    row = page.locator("#result_list tbody tr", has_text="moved-on@example.com")
    assert row.locator("td.field-app_value").inner_text() == f"public.users.email {INCIDENT_ADDRESSES[0]}"
    assert row.locator("td.field-auth_value").inner_text() == "public.users.email moved-on@example.com"
    row.evaluate("e => e.scrollIntoView({block: 'center'})")
    screenshot(page, "list_drifted_values")
    table = page.locator("#result_list").bounding_box()
    assert table["width"] <= page.locator("#changelist .results").bounding_box()["width"] + 1  # fits 1280 px


#: WCAG 2.1 A and AA: the rules axe-core tags with these (axe-playwright-python bundles it).
WCAG_21_AA = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}


def test_every_page_a_support_person_uses_passes_axe_wcag_21_aa(page, live_server, demo_data):
    """axe-core in Chromium on each page of the support path: no WCAG 2.1 A/AA violation, so
    a new page or style that breaks contrast or tells links apart by colour alone fails."""
    from axe_playwright_python.sync_playwright import Axe

    from provisioning import jobs
    from provisioning.actors import Actor
    from provisioning.engine import services

    axe = Axe()
    found: dict[str, list] = {}

    def check(name: str) -> None:
        violations = axe.run(page, options={**WCAG_21_AA, "resultTypes": ["violations"]}).response["violations"]
        found[name] = [(v["id"], [n["target"] for n in v["nodes"]][:3]) for v in violations]

    page.goto(f"{live_server.url}/admin/login/")
    check("sign-in")
    log_in(page, live_server, PROVISIONER)
    check("home")
    user_id = user_id_of(INCIDENT_ADDRESSES[0])
    actor = Actor.command_line()
    services.provision_users(actor=actor, user_ids=[user_id], dry_run=True)
    job = jobs.start_provision_all_job(
        actor=Actor(username=PROVISIONER[0], channel="web", user=_user(PROVISIONER[0])), batch_size=50
    )
    pages = {
        "user list": "/admin/provisioning/authuser/?status=missing_profiles",
        "cannot be provisioned": "/admin/provisioning/authuser/?status=cannot",
        "user detail": f"/admin/provisioning/authuser/{user_id}/change/",
        "provision all preview": "/admin/provisioning/authuser/provision-all/",
        "audit log": "/admin/provisioning/auditevent/",
        "audit event": f"/admin/provisioning/auditevent/{_latest_event_id()}/change/",
        "health": "/admin/tools/health/",
        "jobs": "/admin/tools/jobs/",
        "job": f"/admin/tools/jobs/{job.pk}/",
        "app users": "/admin/provisioning/appuser/",
        "wallets": "/admin/provisioning/wallet/",
        "not found": "/admin/provisioning/authuser/00000000-0000-0000-0000-000000000000/change/",
    }
    for name, path in pages.items():
        page.goto(f"{live_server.url}{path}")
        check(name)

    assert {name: v for name, v in found.items() if v} == {}


def _user(username: str):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.get(username=username)


def _latest_event_id() -> int:
    from provisioning.models import AuditEvent

    return AuditEvent.objects.latest("id").pk


RARE_REASON = "wallets are not opened for this region"


def test_a_job_with_failures_reports_them_by_reason_and_links_to_those_users(
    page, live_server, demo_data, django_user_model
):
    """The job page and its audit event start with the failures by table and reason, a rare
    one (a trigger refusing one wallet) listed with its count beside the common ones."""
    from django.db import connection

    from provisioning import jobs
    from provisioning.actors import Actor
    from provisioning.models import AuditEvent, ProvisioningJob

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT u.id FROM auth.users u JOIN public.users a ON a.id = u.id WHERE u.deleted_at IS NULL "
            "AND NOT u.is_anonymous AND NOT EXISTS (SELECT 1 FROM public.wallets w WHERE w.user_id = u.id) "
            "ORDER BY u.id LIMIT 1"
        )
        (refused,) = cursor.fetchone()
        cursor.execute(
            "CREATE FUNCTION public.refuse_one_wallet() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"IF NEW.user_id = '{refused}' THEN RAISE EXCEPTION '{RARE_REASON}'; END IF; RETURN NEW; END $$; "
            "CREATE TRIGGER refuse_one_wallet BEFORE INSERT ON public.wallets "
            "FOR EACH ROW EXECUTE FUNCTION public.refuse_one_wallet()"
        )
    try:
        staff = django_user_model.objects.get(username=PROVISIONER[0])
        job = jobs.start_provision_all_job(
            actor=Actor(username=staff.username, channel=AuditEvent.Channel.WEB, user=staff)
        )
        jobs.run_job(job.pk)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER refuse_one_wallet ON public.wallets; DROP FUNCTION public.refuse_one_wallet()")
    job = ProvisioningJob.objects.get(pk=job.pk)

    log_in(page, live_server, PROVISIONER)
    page.goto(f"{live_server.url}/admin/tools/jobs/{job.pk}/")
    assert page.locator("#job-state").inner_text() == "Partly succeeded"
    groups = page.locator("#failure-groups tbody tr")
    assert groups.count() >= 2
    rare = groups.filter(has_text=RARE_REASON)
    assert rare.locator("td").nth(0).inner_text() == "1" and rare.locator("td").nth(1).inner_text() == "public.wallets"
    assert sum(int(groups.nth(i).locator("td").first.inner_text()) for i in range(groups.count())) == (
        job.not_provisioned_count
    )
    screenshot(page, "job_partly_succeeded", docs=True)

    page.locator("#job-not-provisioned-link").click()
    page.wait_for_url(re.compile(rf"job={job.pk}"))
    assert "Could not be provisioned by job" in page.locator("#changelist-filter").inner_text()
    shown = page.locator("#result_list tbody tr").count()
    assert 0 < shown <= job.not_provisioned_count
    screenshot(page, "job_not_provisioned_users")

    event = AuditEvent.objects.filter(run_id=job.run_id, action=AuditEvent.Action.PROVISION_ALL_MISSING).first()
    page.goto(f"{live_server.url}/admin/provisioning/auditevent/{event.pk}/change/")
    first_section = page.locator("fieldset").nth(1)
    assert "Could not be provisioned, by reason" in first_section.inner_text()
    assert RARE_REASON in first_section.inner_text()
    screenshot(page, "audit_event_failures_by_reason", docs=True)


def test_a_sync_event_reads_as_user_column_old_new_and_a_preview_as_what_it_counted(page, live_server, demo_data):
    from django.db import connection

    from provisioning.actors import Actor
    from provisioning.drift import services as drift_services
    from provisioning.models import AuditEvent

    user_id = user_id_of(INCIDENT_ADDRESSES[0])
    with connection.cursor() as cursor:
        cursor.execute("UPDATE auth.users SET email = 'moved-away@example.com' WHERE id = %s", [user_id])
    result = drift_services.sync_values(actor=Actor.command_line(), user_ids=[user_id])

    log_in(page, live_server, PROVISIONER)
    page.goto(f"{live_server.url}/admin/provisioning/auditevent/{result.audit_event_ids[0]}/change/")
    cells = page.locator("#values-changed tbody tr td").all_inner_texts()
    assert cells[1:] == ["public.users.email", INCIDENT_ADDRESSES[0], "moved-away@example.com"]
    page.locator("#values-changed").scroll_into_view_if_needed()
    screenshot(page, "audit_event_sync", docs=True)

    page.goto(f"{live_server.url}/admin/provisioning/authuser/")
    page.get_by_role("link", name="Provision all missing…").click()
    page.get_by_role("heading", name="What will be written").wait_for()
    preview = AuditEvent.objects.filter(outcome=AuditEvent.Outcome.DRY_RUN).latest("id")
    would = sum(preview.detail["would_create"].values())
    assert would > 0
    page.goto(f"{live_server.url}/admin/provisioning/auditevent/")
    assert f"would create {would} rows" in page.locator("#result_list tbody tr").first.inner_text()
    screenshot(page, "audit_log_with_a_preview")


# --- tables line up with their header (tests/browser_layout.py) ------------------------------

#: The health page's checks table as it was rendered, with the rule that broke it.
MISALIGNED_TABLE = """<!doctype html><html><head><style>
  .health-ok::before { content: "✓ "; }
  table { width: 600px; }
</style></head><body>
<table id="checks">
  <thead><tr><th>Status</th><th>Check</th><th>Found</th></tr></thead>
  <tbody>
    <tr class="health-ok"><td>ok</td><th scope="row">Sign-up trigger</th><td>fires</td></tr>
    <tr class="health-problem"><td>problem</td><th scope="row">Sign-up function</th><td>broken</td></tr>
  </tbody>
</table>
<table id="spans">
  <thead><tr><th colspan="2">Who</th><th>What</th></tr></thead>
  <tbody>
    <tr><td rowspan="2">a</td><td>b</td><td>c</td></tr>
    <tr><td>d</td><td>e</td></tr>
    <tr><td colspan="2">f</td><td>g</td></tr>
  </tbody>
</table>
</body></html>"""


def test_the_layout_check_catches_a_generated_box_on_a_table_row(browser):
    """The check fails on the health page's old CSS (a `::before` box on `<tr class="health-ok">`)
    and passes rowspan and colspan that do line up."""
    page = browser.new_page(viewport=VIEWPORT)
    try:
        page.set_content(MISALIGNED_TABLE)
        problems = table_layout_problems(page)
        page.add_style_tag(content=".health-ok::before { content: none; }")
        fixed = table_layout_problems(page)
    finally:
        page.close()

    assert any("#checks: row 2" in p and "4 boxes, the header 3 columns" in p and "::before" in p for p in problems)
    assert any("#checks: row 2" in p and "column 1" in p for p in problems), problems
    assert not any("#spans" in p for p in problems), problems
    assert not any("row 3" in p for p in problems), problems  # the problem row has no extra box
    assert fixed == []


def test_the_real_stylesheet_adds_no_box_to_a_health_table_row(page, live_server, demo_data):
    """eloity.css's ✓/✗/? marks stay off table rows of each status the health page uses."""
    log_in(page, live_server, VIEWER)
    page.goto(f"{live_server.url}/admin/tools/health/")
    for status in ("ok", "warning", "problem", "bad", "unknown"):
        content = page.evaluate(
            """(status) => {
                const row = document.createElement("tr");
                row.className = "health-" + status;
                document.querySelector("#content-main tbody").appendChild(row);
                const content = getComputedStyle(row, "::before").content;
                row.remove();
                return content;
            }""",
            status,
        )
        assert content in ("none", "normal"), (status, content)


@pytest.fixture
def broken_database(demo_data):
    """The demo with a sign-up function that writes a column wallets lacks, and a NOT NULL
    column no one fills (committed: the live server reads it); restored afterwards."""
    from tests.factories import SOL_BALANCE_TRIGGER, execute

    execute(SOL_BALANCE_TRIGGER)
    execute("ALTER TABLE public.wallets ADD COLUMN network text NOT NULL DEFAULT 'solana'")
    execute("ALTER TABLE public.wallets ALTER COLUMN network DROP DEFAULT")
    cache.clear()
    yield
    execute("ALTER TABLE public.wallets DROP COLUMN IF EXISTS network")
    demo.install_schema()
    cache.clear()


def test_the_health_page_lines_up_on_a_broken_database(page, live_server, broken_database):
    """The one moment people read the page: problem rows and ok rows under their headings."""
    log_in(page, live_server, PROVISIONER)
    page.goto(f"{live_server.url}/admin/tools/health/")
    assert "problem" in page.locator("#health-headline").inner_text()
    page.locator("#health-checks").evaluate("e => e.scrollIntoView({block: 'start'})")
    screenshot(page, "health_broken_database")
    checks = page.locator("#health-checks")
    status_left = checks.locator("thead th").first.bounding_box()["x"]
    for status in ("ok", "warning", "problem"):
        badge = checks.locator(f"tbody > tr.health-{status} > td").first
        assert badge.inner_text().strip() == status
        assert abs(badge.bounding_box()["x"] - status_left) <= 1, status
    assert_tables_line_up(page)
    assert "`" not in page.locator("#content-main").inner_text()  # code spans are <code>

    # The sign-up function's fix is on the page: the generated SQL, collapsed, copyable.
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    function_row = checks.locator("tbody > tr", has=page.get_by_role("rowheader", name="Sign-up function", exact=True))
    generated = function_row.locator("details.generated-trigger")
    assert generated.get_attribute("open") is None
    generated.locator("summary").click()
    assert "CREATE OR REPLACE FUNCTION public.handle_new_user()" in generated.locator("pre").inner_text()
    generated.locator("button.copy-sql").click()
    generated.locator("button.copy-sql[data-copied]").wait_for()
    function_row.evaluate("e => e.scrollIntoView({block: 'start'})")
    screenshot(page, "health_generated_sql")
    assert_tables_line_up(page)

    # Each reason a user cannot be provisioned has its own advice beside it.
    cannot = checks.locator("tbody > tr", has=page.get_by_role("rowheader", name="Users that cannot be provisioned"))
    items = cannot.locator("ul.health-advice li")
    reasons = [items.nth(i).locator("strong").inner_text() for i in range(items.count())]
    advice = {r: text[len(r) + 2 :] for r, text in zip(reasons, items.all_inner_texts(), strict=True)}
    network = advice["wallets: public.wallets.network is NOT NULL with no default and the spec does not fill it"]
    assert "phone" not in network.lower() and "SET DEFAULT" in network
    assert "phone-only" in advice["users: auth user has no email; public.users.email is NOT NULL"]
    cannot.evaluate("e => e.scrollIntoView({block: 'start'})")
    screenshot(page, "health_cannot_be_provisioned")

    page.get_by_role("button", name="Simulate a sign-up").click()
    page.get_by_role("heading", name="Simulated sign-up (rolled back)").wait_for()
    assert_tables_line_up(page)
    screenshot(page, "health_simulated_signup_broken")

    from tests.factories import execute

    execute("DROP TRIGGER on_auth_user_created ON auth.users")  # the fixture puts it back
    page.goto(f"{live_server.url}/admin/tools/health/")
    trigger_row = checks.locator("tbody > tr", has=page.get_by_role("rowheader", name="Sign-up trigger", exact=True))
    assert trigger_row.locator("td").first.inner_text().strip() == "problem"
    assert trigger_row.locator("details.generated-trigger").count() == 1
    assert_tables_line_up(page)


def test_every_tools_page_lines_up(page, live_server, demo_data):
    """The pages the other tests do not reach, each under the page fixture's layout check:
    the list's filters, the orphans page, app table lists, jobs, the audit log."""
    from tests.factories import execute

    execute("INSERT INTO public.wallets (user_id) VALUES (gen_random_uuid())")  # an orphan to list
    log_in(page, live_server, PROVISIONER)
    paths = [
        "/admin/",
        "/admin/tools/health/",
        "/admin/provisioning/authuser/",
        "/admin/provisioning/authuser/?status=missing_any",
        "/admin/provisioning/authuser/?status=cannot",
        "/admin/provisioning/authuser/?q=gmail.com",
        "/admin/provisioning/authuser/orphans/",
        "/admin/provisioning/authuser/provision-all/",
        "/admin/provisioning/authuser/sync-all/",
        "/admin/provisioning/appuser/",
        "/admin/provisioning/profile/",
        "/admin/provisioning/wallet/",
        "/admin/provisioning/auditevent/",
        "/admin/tools/jobs/",
    ]
    for path in paths:
        response = page.goto(f"{live_server.url}{path}")
        assert response.status == 200, path
        assert page.locator("table").count() > 0 or path.endswith("jobs/"), path
        assert_tables_line_up(page)
