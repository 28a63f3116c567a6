"""`/metrics`: Prometheus text with the dashboard's own figures, refused without the token
(or an allowed address), off without either, computed at most once per cache period."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.test import override_settings

from provisioning.engine import selectors
from provisioning.hooks import watchdog
from tests.factories import disable_trigger, make_auth_user, make_chained_shape

pytestmark = pytest.mark.django_db

TOKEN = "metrics-token-for-tests-0123456789"


@pytest.fixture(autouse=True)
def fresh_cache():
    cache.clear()
    yield
    cache.clear()


def scrape(client, **headers):
    return client.get("/metrics", **headers)


def value(text: str, series: str) -> float:
    (line,) = [line for line in text.splitlines() if line.startswith(series + " ")]
    return float(line.split()[-1])


def test_metrics_are_off_without_a_token_or_an_allowlist(client):
    assert scrape(client).status_code == 404


@override_settings(METRICS_TOKEN=TOKEN)
def test_metrics_refuse_a_missing_or_wrong_token(client):
    assert scrape(client).status_code == 401
    assert scrape(client, HTTP_AUTHORIZATION="Bearer wrong").status_code == 401


@override_settings(METRICS_TOKEN=TOKEN)
def test_metrics_equal_provisioning_status_and_the_watchdog(client):
    disable_trigger()
    make_auth_user(keep=())
    make_auth_user(keep=("users",))
    make_auth_user(None, phone="15550007777", keep=())
    watchdog.remember(watchdog.Finding(), grace=60)
    counts = selectors.status_counts()

    response = scrape(client, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    text = response.content.decode()

    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
    assert value(text, "eloity_auth_users") == counts.auth_users == 3
    for table, n in counts.missing.items():
        assert value(text, f'eloity_missing_rows{{table="{table}"}}') == n
    assert value(text, "eloity_missing_any") == counts.missing_any
    assert value(text, "eloity_cannot_provision_rows") == sum(counts.blocked.values()) == 1
    assert value(text, "eloity_cannot_provision_users") == counts.blocked_users == 1
    assert value(text, "eloity_missing_awaiting_confirmation") == 0  # provisioning runs at sign-up here
    assert value(text, "eloity_oldest_unprovisioned_signup_age_seconds") >= 0
    assert value(text, 'eloity_doctor_check_status{check="Sign-up trigger"}') == 2  # disabled: a problem
    assert value(text, "eloity_watchdog_last_run_timestamp_seconds") > 0
    assert value(text, "eloity_watchdog_open_incidents") == 0
    assert value(text, 'eloity_jobs{state="running"}') == 0
    assert value(text, 'eloity_webhook_deliveries{outcome="succeeded"}') == 0


@override_settings(METRICS_TOKEN=TOKEN)
def test_metrics_count_a_user_blocked_in_several_tables_once(client):
    make_auth_user(keep=())
    make_auth_user(keep=())
    make_auth_user(keep=("users",))
    make_chained_shape()

    text = scrape(client, HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode()

    assert value(text, "eloity_cannot_provision_users") == 2
    assert value(text, "eloity_cannot_provision_rows") == 6
    assert "# HELP eloity_cannot_provision_users Live sign-ups" in text


@override_settings(METRICS_TOKEN=TOKEN)
def test_metrics_are_computed_at_most_once_per_cache_period(client):
    make_auth_user()
    first = scrape(client, HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode()
    make_auth_user()

    cached = scrape(client, HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode()
    cache.clear()
    recounted = scrape(client, HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode()

    assert value(first, "eloity_auth_users") == value(cached, "eloity_auth_users") == 1
    assert value(recounted, "eloity_auth_users") == 2


@override_settings(METRICS_ALLOWED_IPS=["10.9.9.9"])
def test_an_allowed_address_scrapes_without_a_token(client):
    assert scrape(client, REMOTE_ADDR="10.9.9.9").status_code == 200
    assert scrape(client, REMOTE_ADDR="10.9.9.8").status_code == 401


@override_settings(METRICS_TOKEN=TOKEN)
def test_metrics_read_the_provisioning_ledger_and_say_when_it_was_caught_up(client):
    from provisioning.engine import ledger

    disable_trigger()
    make_auth_user(keep=(), created_at="2026-01-05 10:00+00")
    make_auth_user(None, phone="15550008888", keep=())
    state = ledger.rebuild()
    make_auth_user(keep=())  # a sign-up since the ledger's last catch-up: not counted yet

    text = scrape(client, HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode()
    assert value(text, "eloity_counts_from_ledger") == 1
    assert value(text, "eloity_ledger_caught_up_timestamp_seconds") == pytest.approx(state.caught_up_at.timestamp())
    assert value(text, "eloity_missing_any") == 2  # as of the ledger
    assert value(text, "eloity_cannot_provision_users") == 1
    assert value(text, "eloity_oldest_unprovisioned_signup_age_seconds") > 0  # 2026-01-05, from the ledger

    cache.clear()
    ledger.catch_up()
    text = scrape(client, HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode()
    assert value(text, "eloity_missing_any") == 3 == selectors.status_counts().missing_any
