"""The watchdog: a late sign-up is found, alerted once per incident, healed with --heal,
then resolved; fresh sign-ups inside the grace period are left alone; exit codes for cron."""

from __future__ import annotations

import pytest

from provisioning.hooks import watchdog
from provisioning.models import AuditEvent
from tests.factories import count, disable_trigger, make_auth_user, run_command

pytestmark = pytest.mark.django_db

TABLES = ("users", "profiles", "wallets")
Action = AuditEvent.Action


def minutes_ago(n: int) -> str:
    from django.utils import timezone

    return (timezone.now() - timezone.timedelta(minutes=n)).isoformat()


def test_a_late_sign_up_is_alerted_once_healed_and_resolved(cli_actor):
    disable_trigger()
    late = make_auth_user("late@example.com", keep=(), created_at=minutes_ago(5))
    make_auth_user("fresh@example.com", keep=(), created_at=minutes_ago(0))  # inside the grace period
    make_auth_user("old@example.com", keep=(), created_at=minutes_ago(60 * 48))  # outside the window
    sent: list[str] = []

    first = watchdog.run(grace=60, window=86_400, notify=sent.append)
    again = watchdog.run(grace=60, window=86_400, notify=sent.append)

    assert first.finding.late == [late] and first.alerted and not again.alerted
    assert len(sent) == 1
    assert "1 sign-up(s) older than 60 s still miss app rows (1 users, 1 profiles, 1 wallets)" in sent[0]
    assert "late@example.com" in sent[0] and "Most likely cause: Sign-up trigger" in sent[0]
    assert AuditEvent.objects.filter(action=Action.WATCHDOG_ALERT).count() == 1

    healed = watchdog.run(grace=60, window=86_400, heal=True, notify=sent.append)

    assert healed.healed == {"users": 1, "profiles": 1, "wallets": 1} and healed.resolved
    assert [count(t, [late]) for t in TABLES] == [1, 1, 1]
    assert sent[-1] == "Resolved: every live sign-up has its app rows again."
    assert AuditEvent.objects.filter(action=Action.WATCHDOG_RESOLVED).count() == 1
    event = AuditEvent.objects.filter(action=Action.PROVISION_USER).latest("id")
    assert event.actor_username == "watchdog"
    assert watchdog.open_incident() is None


def test_the_alert_names_a_phone_only_sign_up_by_its_phone():
    disable_trigger()
    make_auth_user(None, phone="15550003333", keep=(), created_at=minutes_ago(5))
    sent: list[str] = []

    watchdog.run(grace=60, window=86_400, notify=sent.append)

    assert "phone 15550003333" in sent[0]


def test_watchdog_exit_codes_for_cron():
    disable_trigger()
    make_auth_user(keep=(), created_at=minutes_ago(3))

    late_code, late_out = run_command("provisioning_watchdog", "--grace", "60")
    healed_code, healed_out = run_command("provisioning_watchdog", "--grace", "60", "--heal")
    calm_code, calm_out = run_command("provisioning_watchdog", "--grace", "60")
    bad_code, _ = run_command("provisioning_watchdog", "--grace", "100", "--window", "50")

    assert late_code == 1 and "alert: 1 sign-up(s) older than 60 s" in late_out
    assert healed_code == 0 and "healed: 1 users, 1 profiles, 1 wallets" in healed_out
    assert "alert: Resolved" in healed_out
    assert (calm_code, calm_out.strip()) == (0, "no late sign-ups")
    assert bad_code == 2


def test_the_watchdog_line_names_its_window_beside_the_totals(viewer_client):
    from django.urls import reverse

    disable_trigger()
    make_auth_user(keep=(), created_at=minutes_ago(60 * 48))  # missing rows, outside the window
    watchdog.run(grace=60, notify=lambda text: None)

    home = viewer_client.get(reverse("admin:index")).content.decode()
    line = home.split('id="watchdog-status"')[1].split("</div>")[0]
    assert "in the last 24 hours, 0 sign-ups older than 60 s were still without rows" in " ".join(line.split())
    assert "Older sign-ups missing rows are in the totals" in line

    watchdog.run(grace=60, window=3600, notify=lambda text: None)
    health = viewer_client.get(reverse("provisioning-health")).content.decode()
    assert "in the last hour, 0 sign-ups" in " ".join(health.split())


def test_home_and_health_pages_show_the_watchdogs_last_run_and_an_open_incident(viewer_client):
    from django.urls import reverse

    before = viewer_client.get(reverse("admin:index")).content.decode()
    assert "The watchdog has not run yet" in before

    disable_trigger()
    make_auth_user(keep=(), created_at=minutes_ago(5))
    watchdog.run(grace=60, notify=lambda text: None)

    home = viewer_client.get(reverse("admin:index")).content.decode()
    health = viewer_client.get(reverse("provisioning-health")).content.decode()
    for page in (home, health):
        assert "Open incident" in page and "1 sign-up older than" in page
