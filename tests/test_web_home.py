"""The home page (admin index): totals, chart, health, latest events, cache; and the list's
screen-reader text, times and ids."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.core.cache import cache
from django.template import Context, Template
from django.urls import reverse
from django.utils import timezone

from provisioning.engine import selectors, services
from provisioning.web import dashboard
from tests.factories import make_auth_user, make_chained_shape

pytestmark = pytest.mark.django_db

HOME = "admin:index"


@pytest.fixture(autouse=True)
def fresh_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def population():
    """Sign-ups over three weeks with a gap week between; one of each provisioning state."""
    week1 = "2026-03-02 10:00+00"  # a Monday
    week2 = "2026-03-10 10:00+00"
    week4 = "2026-03-25 10:00+00"
    return {
        "complete": make_auth_user(created_at=week1),
        "complete2": make_auth_user(created_at=week4),
        "no_app_user": make_auth_user(keep=("profiles", "wallets"), created_at=week2),
        "no_profile": make_auth_user(keep=("users", "wallets"), created_at=week2),
        "no_wallet": make_auth_user(keep=("users", "profiles"), created_at=week2),
        "nothing": make_auth_user(keep=(), created_at=week4),
        # hidden from the totals, like the list's default
        "deleted": make_auth_user(deleted=True, keep=(), created_at=week1),
        "anonymous": make_auth_user(anonymous=True, keep=(), created_at=week1),
    }


def figure(html: str, element_id: str) -> int:
    match = re.search(rf'id="{element_id}"[^>]*>\s*<span class="value">(\d+)</span>', html)
    assert match, f"no figure {element_id}"
    return int(match.group(1))


def test_totals_match_the_database(viewer_client, population):
    html = viewer_client.get(reverse(HOME)).content.decode()
    counts = selectors.status_counts()
    assert figure(html, "total-auth-users") == counts.auth_users == 6
    assert figure(html, "total-complete") == counts.fully_provisioned == 2
    assert figure(html, "total-missing-any") == counts.missing_any == 4
    assert figure(html, "total-missing-users") == counts.missing["users"] == 2
    assert figure(html, "total-missing-profiles") == counts.missing["profiles"] == 2
    assert figure(html, "total-missing-wallets") == counts.missing["wallets"] == 2
    assert figure(html, "total-cannot-provision") == sum(counts.blocked.values()) == 0
    assert "33.3 % of live sign-ups" in html


def test_each_total_links_to_its_filtered_list(viewer_client, population):
    html = viewer_client.get(reverse(HOME)).content.decode()
    changelist = reverse("admin:provisioning_authuser_changelist")
    for status in ("missing_any", "missing_users", "missing_profiles", "missing_wallets", "complete"):
        assert f'href="{changelist}?status={status}"' in html
    # and the link leads to exactly the users counted
    listed = viewer_client.get(changelist, {"status": "missing_profiles"}).context["cl"].result_list
    assert {u.pk for u in listed} == {population["no_profile"], population["nothing"]}


def test_chart_has_a_bar_per_week_including_empty_weeks(viewer_client, population):
    html = viewer_client.get(reverse(HOME)).content.decode()
    svg = re.search(r'<svg class="eloity-chart".*?</svg>', html, re.S).group(0)
    weeks = re.findall(r'<g class="week-bar[^"]*" data-week="([\d-]+)" data-missing="(\d+)" data-signups="(\d+)"', svg)
    assert weeks == [
        ("2026-03-02", "0", "1"),
        ("2026-03-09", "3", "3"),
        ("2026-03-16", "0", "0"),
        ("2026-03-23", "1", "2"),
    ]
    # readable without colour: a title per bar, a description, a text table
    assert "<title>Week of 9 Mar 2026: 3 sign-ups, 3 missing app rows (users 1, profiles 1, wallets 1)</title>" in svg
    assert 'role="img"' in svg and "<desc" in svg
    assert 'id="home-chart-table"' in html
    assert "worst-week" in svg


def test_chart_and_figures_need_no_cdn_and_no_script(viewer_client, population):
    html = viewer_client.get(reverse(HOME)).content.decode()
    assert "cdn" not in html.lower()
    assert "https://" not in re.sub(r'xmlns="http://www.w3.org/2000/svg"', "", html)


def test_counts_are_cached_and_the_page_says_so(viewer_client, population):
    first = viewer_client.get(reverse(HOME)).content.decode()
    assert "cached for up to 60 s per server process" in first
    assert re.search(r'id="home-cache-note">.*?<time datetime="[^"]+Z" title="[^"]+ UTC">', first, re.S)
    make_auth_user(keep=())
    cached = viewer_client.get(reverse(HOME)).content.decode()
    assert figure(cached, "total-auth-users") == 6
    recounted = viewer_client.get(reverse(HOME), {"recount": "1"}).content.decode()
    assert figure(recounted, "total-auth-users") == 7
    assert figure(recounted, "total-missing-any") == 5


def test_latest_audit_events_link_to_each_event(cli_actor, viewer_client, population):
    result = services.provision_users(actor=cli_actor, user_ids=[population["nothing"]])
    assert result.total_created == 3
    html = viewer_client.get(reverse(HOME)).content.decode()
    section = html[html.index('id="home-audit-events"') :]
    event = selectors.audit_events_for(population["nothing"]).first()
    assert f'href="{reverse("admin:provisioning_auditevent_change", args=[event.pk])}"' in section
    assert "Provision one user" in section or "Provision selected users" in section


def test_health_says_unavailable_when_diagnostics_fail(viewer_client, population, monkeypatch):
    from provisioning import diagnostics

    def summary():
        raise RuntimeError("catalog unreadable")

    monkeypatch.setattr(diagnostics, "summary", summary)
    html = viewer_client.get(reverse(HOME)).content.decode()
    assert "Diagnostics unavailable." in html
    assert 'href="/admin/tools/health/"' not in html.split('id="home-health"')[1].split("</div>")[0]


def _health_panel(html: str) -> str:
    return html.split('id="home-health"')[1].split('id="home-audit-events"')[0]


def test_home_panel_and_health_page_give_the_same_summary(viewer_client, population):
    from django.core.cache import cache

    from provisioning import diagnostics
    from tests.factories import disable_trigger

    for broken in (False, True):
        if broken:
            disable_trigger()
            cache.clear()
        report = diagnostics.run_checks()
        panel = _health_panel(viewer_client.get(reverse(HOME)).content.decode())
        page = viewer_client.get(reverse("provisioning-health")).content.decode()

        assert report.headline in panel and report.headline in page
        assert "Diagnostics unavailable" not in panel and 'href="/admin/tools/health/"' in panel
        for item in report.attention:
            assert f"<li>{item['name']}: {item['status']}</li>" in panel
    assert report.status == diagnostics.PROBLEM
    assert 'class="health-bad"' in panel and "<li>Sign-up trigger: problem</li>" in panel


def test_staff_without_the_view_permission_get_the_plain_index(client, django_user_model, population):
    staff = django_user_model.objects.create_user("plain", password="x", is_staff=True)
    client.force_login(staff)
    response = client.get(reverse(HOME))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="home-dashboard"' not in html
    assert 'id="recent-actions-module"' in html


def test_home_requires_staff_login(client):
    response = client.get(reverse(HOME))
    assert response.status_code == 302
    assert reverse("admin:login") in response["Location"]


def test_home_keeps_the_app_list(viewer_client, population):
    html = viewer_client.get(reverse(HOME)).content.decode()
    assert 'id="home-dashboard"' in html
    assert 'class="app-provisioning module' in html


def test_empty_database_shows_what_to_expect(viewer_client):
    html = viewer_client.get(reverse(HOME)).content.decode()
    assert "No sign-ups yet" in html
    assert figure(html, "total-auth-users") == 0


# --- everyday polish ------------------------------------------------------------------


def test_status_columns_are_readable_as_text(viewer_client, population):
    html = viewer_client.get(reverse("admin:provisioning_authuser_changelist"), {"status": "missing_profiles"})
    html = html.content.decode()
    assert '<span class="visually-hidden">missing</span>' in html
    assert '<span class="visually-hidden">present</span>' in html
    assert 'alt="True"' not in html and 'alt="False"' not in html


def test_filter_with_no_results_says_what_to_do(viewer_client):
    make_auth_user()
    html = viewer_client.get(reverse("admin:provisioning_authuser_changelist"), {"status": "missing_profiles"})
    html = html.content.decode()
    assert 'class="empty-state"' in html
    assert "Nobody is missing a row here" in html


def test_search_with_no_results_says_what_to_do(viewer_client):
    html = viewer_client.get(reverse("admin:provisioning_authuser_changelist"), {"q": "nobody@nowhere"}).content
    assert b"No sign-up matches" in html


def test_local_time_shows_utc_on_hover():
    moment = dt.datetime(2026, 5, 4, 9, 30, tzinfo=dt.UTC)
    with timezone.override("Europe/Paris"):
        html = Template("{% load eloity %}{{ t|local_time }}").render(Context({"t": moment}))
    assert html.startswith('<time datetime="2026-05-04T09:30:00Z" title="2026-05-04 09:30:00 UTC">4 May 2026, 11:30')
    assert "CEST" in html


def test_short_id_shows_eight_characters_and_copies_the_full_id():
    full = "0f8fad5b-d9cb-469f-a165-70867728950e"
    html = Template("{% load eloity %}{{ id|short_id }}").render(Context({"id": full}))
    assert f'<code title="{full}">0f8fad5b</code>' in html
    assert f'data-copy="{full}"' in html and f'aria-label="Copy the full id {full}"' in html
    assert '<button type="button"' in html


def test_detail_page_shows_a_copyable_id_and_local_times(provisioner_client, population):
    user_id = population["no_profile"]
    html = provisioner_client.get(reverse("admin:provisioning_authuser_change", args=[user_id])).content.decode()
    assert f'data-copy="{user_id}"' in html
    assert "<strong>missing</strong>" in html
    assert 'id="provision-form"' in html


def test_dashboard_totals_equal_status_counts_at_demo_scale(settings):
    from provisioning import demo

    demo.seed(200)
    figures = dashboard.compute_figures()
    counts = selectors.status_counts()
    assert figures.auth_users == counts.auth_users
    assert figures.missing == counts.missing
    assert figures.missing_any == counts.missing_any
    assert figures.missing_outside_chart == 0
    assert sum(w.signups for w in figures.weeks) == counts.auth_users


@pytest.mark.parametrize("zone", ["Pacific/Auckland", "America/Los_Angeles"])
def test_home_chart_and_health_page_put_a_sign_up_in_the_same_week(zone):
    """One computation of "missing rows by week", in the site's time zone: a sign-up late on
    a Sunday (UTC) is the next Monday's week in Auckland and the same week in Los Angeles."""
    from django.test import override_settings

    from provisioning import diagnostics

    user = make_auth_user(keep=(), created_at="2026-03-01 20:00+00")
    with override_settings(TIME_ZONE=zone):
        local = timezone.localtime(timezone.make_aware(dt.datetime(2026, 3, 1, 20, 0), dt.UTC)).date()
        expected_week = local - dt.timedelta(days=local.weekday())

        chart = {w.week: w.missing_any for w in dashboard.compute_figures().weeks}
        health = {row["week of"]: row["missing users"] for row in diagnostics.missing_by_week()}

    assert chart == {expected_week: 1}
    assert health == {expected_week.isoformat(): 1}
    assert selectors.users_missing().filter(pk=user).exists()


def test_the_home_page_leads_to_every_tool_a_support_person_uses(viewer_client, population):
    html = viewer_client.get(reverse(HOME)).content.decode()
    tools = html.split('id="home-tools"')[1].split("</nav>")[0]

    for name in ("admin:provisioning_authuser_changelist", "provisioning-health", "provisioning_jobs"):
        assert f'href="{reverse(name)}"' in tools
    assert f'href="{reverse("admin:provisioning_auditevent_changelist")}"' in tools
    for name in ("provisioning-health", "provisioning_jobs"):
        assert viewer_client.get(reverse(name)).status_code == 200


def test_cannot_be_provisioned_counts_each_person_once_on_the_chained_shape(viewer_client):
    # On the chained shape public.users cannot be written (its password is NOT NULL), so
    # profiles and wallets, which need it, cannot either: three rows, one person.
    make_auth_user(keep=())
    make_auth_user(keep=())
    make_auth_user(None, phone="15550009999", keep=())
    make_auth_user(keep=("users",))  # its profile and wallet can be written
    make_chained_shape()

    html = viewer_client.get(reverse(HOME) + "?recount=1").content.decode()

    listed = selectors.population().filter(selectors.cannot_be_provisioned_q()).count()
    assert figure(html, "total-cannot-provision") == listed == 3
    card = re.search(r'<a[^>]*id="total-cannot-provision".*?</a>', html, re.S).group(0)
    assert f'href="{dashboard.list_url("cannot")}"' in card and "9 missing rows" in card
    section = html.split('id="home-cannot-provision"')[1].split('<div class="home-side">')[0]
    assert "Cannot be provisioned (3 users, 9 missing rows)" in section
    assert "Users, by table and reason" in section
    # A phone-only sign-up is named by its phone, never "(no email)".
    assert "phone 15550009999" in section and "(no email)" not in section


def test_rows_that_cannot_be_provisioned_are_left_out_of_the_alerts(viewer_client):
    make_auth_user(None, phone="15550006666", keep=("profiles", "wallets"))  # lacks only an app user it cannot get

    html = viewer_client.get(reverse(HOME) + "?recount=1").content.decode()

    app_users = html.split('id="total-missing-users"')[1].split("</a>")[0]
    assert "0 can be provisioned" in app_users and "(needs attention)" not in app_users
    assert 'class="home-total alert" id="total-missing-any"' not in html
    assert 'class="home-total" id="total-cannot-provision"' in html


def test_the_home_page_reads_the_provisioning_ledger_and_says_as_of_when(viewer_client, population):
    from provisioning.engine import ledger
    from tests.factories import give_rows

    state = ledger.rebuild()
    # The app provisions a user itself: not in the ledger until it catches up.
    give_rows(population["nothing"], ["users", "profiles", "wallets"])
    html = viewer_client.get(reverse(HOME)).content.decode()
    assert "from the provisioning ledger, as of" in html
    assert state.caught_up_at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S") in html
    assert figure(html, "total-missing-any") == 4  # as of the ledger: the app's write is not in it yet
    chart_missing = sum(w.missing_any for w in dashboard.home_figures().weeks)
    assert chart_missing == 4
    ledger.catch_up()
    html = viewer_client.get(reverse(HOME) + "?recount=1").content.decode()
    assert figure(html, "total-missing-any") == 3 == selectors.status_counts().missing_any
    assert figure(html, "total-complete") == 3
    assert figure(html, "total-cannot-provision") == selectors.blocked_summary().users
