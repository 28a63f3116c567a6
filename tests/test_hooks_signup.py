"""The sign-up webhook: POST /hooks/signup/ provisions a new sign-up through the same service
as the admin's button. Bad input changes nothing; replays write nothing twice; concurrent
deliveries for one user give one row per table (through the real server)."""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.request
import uuid

import pytest
from django.test import Client, override_settings
from django.urls import reverse
from standardwebhooks.webhooks import Webhook

from provisioning.models import AuditEvent
from tests.factories import count, make_auth_user

pytestmark = pytest.mark.django_db

SECRET = "bearer-secret-for-tests-0123456789"
STANDARD = "v1,whsec_" + base64.b64encode(b"standard-webhooks-secret-for-tests").decode()
TABLES = ("users", "profiles", "wallets")
Outcome = AuditEvent.Outcome


def delivery(user_id, **changes) -> bytes:
    payload = {
        "type": "INSERT",
        "table": "users",
        "schema": "auth",
        "record": {"id": str(user_id), "email": "attacker@example.com"},
        "old_record": None,
    }
    payload.update(changes)
    return json.dumps(payload).encode()


def post(client, body: bytes, **headers):
    return client.post(reverse("signup_hook"), body, content_type="application/json", **headers)


def bearer(secret=SECRET) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


@pytest.fixture
def hook():
    with override_settings(SIGNUP_WEBHOOK_SECRET=SECRET, SIGNUP_WEBHOOK_STANDARD_SECRET=STANDARD):
        yield Client(enforce_csrf_checks=True)  # a machine endpoint: no CSRF token needed


def test_the_endpoint_is_off_without_a_secret(client):
    response = post(client, delivery(uuid.uuid4()), **bearer())

    assert response.status_code == 404 and response.json() == {"error": "not found"}


def test_a_good_delivery_provisions_exactly_the_missing_rows_and_audits_them(hook):
    user_id = make_auth_user("real@example.com", keep=("users",))

    response = post(hook, delivery(user_id), **bearer(), REMOTE_ADDR="10.2.3.4")

    assert response.status_code == 200
    assert response.json()["created"] == {"users": 0, "profiles": 1, "wallets": 1}
    assert [count(t, [user_id]) for t in TABLES] == [1, 1, 1]
    event = AuditEvent.objects.latest("id")
    assert (event.actor_username, event.channel, event.action, event.outcome) == (
        "webhook",
        "webhook",
        "signup_webhook",
        Outcome.SUCCEEDED,
    )
    assert event.client_address == "10.2.3.4" and event.rows_created["profiles"] == [str(user_id)]


def test_the_payloads_values_are_never_trusted(hook):
    user_id = make_auth_user("real@example.com", keep=())

    post(hook, delivery(user_id), **bearer())

    from tests.factories import rows

    assert rows("users", user_id)[0]["email"] == "real@example.com"


def test_a_replayed_delivery_writes_nothing_twice(hook):
    user_id = make_auth_user(keep=())

    first = post(hook, delivery(user_id), **bearer())
    again = post(hook, delivery(user_id), **bearer())

    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json()["created"] == {"users": 0, "profiles": 0, "wallets": 0}
    assert [count(t, [user_id]) for t in TABLES] == [1, 1, 1]


@pytest.mark.parametrize("headers", [{}, bearer("wrong"), {"HTTP_AUTHORIZATION": SECRET}])
def test_missing_or_wrong_credentials_are_401_and_audited_at_most_once_a_minute(hook, headers):
    user_id = make_auth_user(keep=())

    answers = [post(hook, delivery(user_id), **headers, REMOTE_ADDR="192.0.2.7") for _ in range(3)]

    assert {a.status_code for a in answers} == {401}
    assert answers[0].json() == {"error": "missing or wrong credentials"}
    assert [count(t, [user_id]) for t in TABLES] == [0, 0, 0]
    denied = AuditEvent.objects.filter(outcome=Outcome.DENIED, channel="webhook")
    assert denied.count() == 1 and denied.get().client_address == "192.0.2.7"


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"{not json", "the body is not JSON"),
        (b"[1, 2]", "the body is not a JSON object"),
        (None, "only INSERT deliveries are handled"),
        ("other-table", "only deliveries for auth.users are handled"),
        ("bad-id", "record.id is not a UUID"),
        ("huge", "the body is over 64 KB"),
    ],
)
def test_bad_input_is_a_400_with_one_line_and_writes_nothing(hook, body, error):
    user_id = make_auth_user(keep=())
    if body is None:
        body = delivery(user_id, type="UPDATE")
    elif body == "other-table":
        body = delivery(user_id, table="profiles", schema="public")
    elif body == "bad-id":
        body = delivery("not-a-uuid")
    elif body == "huge":
        body = delivery(user_id, padding="x" * 70_000)
    events = AuditEvent.objects.count()

    response = post(hook, body, **bearer())

    assert response.status_code == 400 and response.json() == {"error": error}
    assert [count(t, [user_id]) for t in TABLES] == [0, 0, 0]
    assert AuditEvent.objects.count() == events


def test_an_id_not_yet_in_auth_users_is_accepted_and_left_for_the_watchdog(hook):
    response = post(hook, delivery(uuid.uuid4()), **bearer())

    assert response.status_code == 202
    assert not AuditEvent.objects.filter(channel="webhook").exists()


def test_other_methods_are_answered_in_json(hook):
    response = hook.get(reverse("signup_hook"))

    assert response.status_code == 405 and response.json() == {"error": "only POST"}


def _signed(body: bytes, *, age_seconds: int = 0) -> dict:
    from datetime import UTC, datetime, timedelta

    msg_id = f"msg_{uuid.uuid4().hex}"
    stamp = datetime.now(tz=UTC) - timedelta(seconds=age_seconds)
    signature = Webhook(STANDARD.removeprefix("v1,")).sign(msg_id, stamp, body.decode())
    return {
        "HTTP_WEBHOOK_ID": msg_id,
        "HTTP_WEBHOOK_TIMESTAMP": str(int(stamp.timestamp())),
        "HTTP_WEBHOOK_SIGNATURE": signature,
    }


def test_a_standard_webhooks_signature_is_accepted_within_five_minutes(hook):
    user_id = make_auth_user(keep=())
    body = delivery(user_id)

    stale = post(hook, body, **_signed(body, age_seconds=400))
    forged = post(hook, body, **{**_signed(body), "HTTP_WEBHOOK_SIGNATURE": "v1,AAAA"})
    garbled = post(hook, body, **{**_signed(body), "HTTP_WEBHOOK_SIGNATURE": "garbage"})
    assert {stale.status_code, forged.status_code, garbled.status_code} == {401}
    assert [count(t, [user_id]) for t in TABLES] == [0, 0, 0]

    good = post(hook, body, **_signed(body))
    assert good.status_code == 200 and [count(t, [user_id]) for t in TABLES] == [1, 1, 1]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("clean_app_tables")
def test_concurrent_deliveries_for_one_user_give_one_row_per_table(live_server):
    user_id = make_auth_user(keep=())
    body = delivery(user_id)
    statuses = []

    def deliver():
        request = urllib.request.Request(
            f"{live_server.url}/hooks/signup/",
            data=body,
            headers={"Authorization": f"Bearer {SECRET}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            statuses.append(response.status)

    with override_settings(SIGNUP_WEBHOOK_SECRET=SECRET):
        threads = [threading.Thread(target=deliver) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        time.sleep(0.1)

    assert statuses == [200] * 6
    assert [count(t, [user_id]) for t in TABLES] == [1, 1, 1]


def test_the_webhook_sql_creates_the_trigger_supabase_would_with_the_bearer_header():
    from tests.factories import run_command

    with override_settings(SIGNUP_WEBHOOK_SECRET=SECRET):
        code, out = run_command("provisioning_webhook_sql", "--url", "https://support.example.com/hooks/signup/")
        bad_code, bad = run_command("provisioning_webhook_sql", "--url", "http://support.example.com/x")

    assert code == 0
    assert "AFTER INSERT ON auth.users" in out and "supabase_functions.http_request(" in out
    assert "'https://support.example.com/hooks/signup/', 'POST'" in out
    assert f'"Authorization": "Bearer {SECRET}"' in out
    assert bad_code == 2 and "https URL of the sign-up endpoint" in bad


def test_the_webhook_sql_applies_to_a_database_with_supabases_http_request():
    from provisioning.management.commands.provisioning_webhook_sql import webhook_sql
    from tests.factories import execute

    execute(
        "CREATE SCHEMA supabase_functions; CREATE FUNCTION supabase_functions.http_request() RETURNS trigger "
        "LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$"
    )

    execute(webhook_sql("https://support.example.com/hooks/signup/", SECRET).replace("%", "%%"))

    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tgname, tgnargs FROM pg_trigger WHERE tgrelid = 'auth.users'::regclass AND NOT tgisinternal "
            "AND tgname = 'eloity_signup_webhook'"
        )
        assert cursor.fetchall() == [("eloity_signup_webhook", 5)]
