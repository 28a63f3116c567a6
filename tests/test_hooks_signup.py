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


# --- several server processes, chunked bodies, replays, failures (issue 23) -------------


class Server:
    """gunicorn with one worker on the test database: two of them are two processes that
    share nothing but the database, as two gunicorn workers or two machines do."""

    def __init__(self, **env):
        import socket
        import subprocess
        import sys
        from pathlib import Path

        from tests.processes import BASE_DIR, current_database_url, manage_env

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.process = subprocess.Popen(
            [str(Path(sys.executable).parent / "gunicorn"), "eloity_admin.wsgi", "--bind", f"127.0.0.1:{self.port}"],
            cwd=BASE_DIR,
            env=manage_env(database_url=current_database_url(), clean=True, **env),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.process.stderr.read().decode()
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        raise AssertionError("gunicorn did not start")

    def post(self, body, headers: dict, *, chunked: bool = False) -> tuple[int, dict]:
        import http.client

        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {"Content-Type": "application/json", **headers}
        if chunked:
            conn.request("POST", "/hooks/signup/", body=iter(body), headers=headers, encode_chunked=True)
        else:
            conn.request("POST", "/hooks/signup/", body=body, headers=headers)
        response = conn.getresponse()
        status, answer = response.status, json.loads(response.read() or b"null")
        conn.close()
        return status, answer

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except Exception:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def two_servers(clean_app_tables):
    servers = []
    try:
        for _ in range(2):
            servers.append(
                Server(SIGNUP_WEBHOOK_SECRET=SECRET, SIGNUP_WEBHOOK_STANDARD_SECRET=STANDARD, ALLOWED_HOSTS="127.0.0.1")
            )
        yield servers
    finally:
        for server in servers:
            server.stop()


def _header_names(meta: dict) -> dict:
    """Test-client META keys as HTTP header names."""
    return {key.removeprefix("HTTP_").replace("_", "-").title(): value for key, value in meta.items()}


@pytest.mark.django_db(transaction=True)
def test_refusals_from_two_server_processes_are_all_counted_in_the_database(two_servers):
    from provisioning.models import WebhookRefusals

    user_id = make_auth_user(keep=())
    body = delivery(user_id)
    sent_per_server = 150

    def refuse(server):
        for _ in range(sent_per_server):
            assert server.post(body, {"Authorization": "Bearer wrong"})[0] == 401

    threads = [threading.Thread(target=refuse, args=(server,)) for server in two_servers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    counted = WebhookRefusals.objects.filter(source="127.0.0.1")
    assert sum(row.refusals for row in counted) == 2 * sent_per_server
    # One "denied" event per source and minute, written at the minute's first refusal.
    denied = AuditEvent.objects.filter(channel="webhook", outcome=Outcome.DENIED, client_address="127.0.0.1")
    assert denied.count() == counted.count()
    assert {e.detail["minute"] for e in denied} == {row.minute.isoformat() for row in counted}
    assert all(e.detail["first_refusal_of_minute"] and e.detail["reason"] for e in denied)
    assert [count(t, [user_id]) for t in TABLES] == [0, 0, 0]


def test_the_denied_events_page_states_the_total_counted_and_the_next_event_the_previous_minutes(
    hook, django_user_model
):
    from datetime import timedelta

    from django.utils import timezone

    from provisioning.models import WebhookRefusals

    previous = timezone.now().replace(second=0, microsecond=0) - timedelta(minutes=3)
    WebhookRefusals.objects.create(source="192.0.2.9", minute=previous, refusals=147)

    for _ in range(4):
        post(hook, delivery(uuid.uuid4()), **bearer("wrong"), REMOTE_ADDR="192.0.2.9")

    event = AuditEvent.objects.get(channel="webhook", outcome=Outcome.DENIED)
    assert event.detail["earlier_minute"] == {"minute": previous.isoformat(), "refusals": 147}
    admin_user = django_user_model.objects.create_superuser("boss", password="boss-password")
    page = Client()
    page.force_login(admin_user)
    html = page.get(reverse("admin:provisioning_auditevent_change", args=[event.pk])).content.decode()
    assert "<strong>4 refused deliveries</strong> from 192.0.2.9 in that minute" in html


@pytest.mark.django_db(transaction=True)
def test_a_chunked_body_without_content_length_is_read_within_the_size_limit(two_servers):
    server = two_servers[0]
    user_id = make_auth_user(keep=())
    body = delivery(user_id)
    chunks = [body[i : i + 40] for i in range(0, len(body), 40)]

    status, answer = server.post(chunks, {"Authorization": f"Bearer {SECRET}"}, chunked=True)

    assert status == 200 and answer["status"] == "provisioned", answer
    assert [count(t, [user_id]) for t in TABLES] == [1, 1, 1]

    other = make_auth_user(keep=())
    huge = delivery(other, padding="x" * 70_000)
    status, answer = server.post(
        [huge[i : i + 4096] for i in range(0, len(huge), 4096)], {"Authorization": f"Bearer {SECRET}"}, chunked=True
    )
    assert (status, answer) == (400, {"error": "the body is over 64 KB"})
    assert [count(t, [other]) for t in TABLES] == [0, 0, 0]


def test_a_replayed_standard_webhooks_delivery_is_answered_without_a_second_event(hook):
    user_id = make_auth_user(keep=())
    body = delivery(user_id)
    signed = _signed(body)

    first = post(hook, body, **signed)
    again = post(hook, body, **signed)

    assert first.status_code == 200 and first.json()["status"] == "provisioned"
    assert again.status_code == 200
    assert again.json() == {
        "status": "already delivered",
        "webhook_id": signed["HTTP_WEBHOOK_ID"],
        "user_id": str(user_id),
    }
    assert AuditEvent.objects.filter(channel="webhook", target_user_ids__contains=[user_id]).count() == 1
    # Another message (a new id) for the same user is handled, and writes nothing twice.
    other = post(hook, body, **_signed(body))
    assert other.json()["created"] == {"users": 0, "profiles": 0, "wallets": 0}


@pytest.mark.django_db(transaction=True)
def test_a_replay_to_another_server_process_is_recognised(two_servers):
    user_id = make_auth_user(keep=())
    body = delivery(user_id)
    signed = _header_names(_signed(body))

    first = two_servers[0].post(body, signed)
    again = two_servers[1].post(body, signed)

    assert first[0] == 200 and first[1]["status"] == "provisioned"
    assert again == (200, {"status": "already delivered", "webhook_id": signed["Webhook-Id"], "user_id": str(user_id)})
    assert AuditEvent.objects.filter(channel="webhook", target_user_ids__contains=[user_id]).count() == 1


def test_a_delivery_that_provisioned_nothing_is_handled_again_when_retried(hook):
    from provisioning.models import WebhookDelivery
    from tests.factories import execute

    user_id = make_auth_user(keep=())
    body = delivery(user_id)
    signed = _signed(body)
    execute(
        "CREATE FUNCTION public.refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "RAISE EXCEPTION 'permission denied for table wallets' USING ERRCODE = '42501'; END $$; "
        "CREATE TRIGGER refuse BEFORE INSERT ON public.wallets FOR EACH ROW EXECUTE FUNCTION public.refuse()"
    )
    assert post(hook, body, **signed).status_code == 500
    assert not WebhookDelivery.objects.filter(message_id=signed["HTTP_WEBHOOK_ID"]).exists()
    execute("DROP TRIGGER refuse ON public.wallets")

    retried = post(hook, body, **signed)

    assert retried.status_code == 200 and retried.json()["status"] == "provisioned"
    assert [count(t, [user_id]) for t in TABLES] == [1, 1, 1]


def test_remembered_delivery_ids_are_forgotten_after_the_replay_window():
    from datetime import timedelta

    from django.utils import timezone

    from provisioning.hooks import deliveries
    from provisioning.models import WebhookDelivery

    WebhookDelivery.objects.create(
        message_id="msg_old", received_at=timezone.now() - deliveries.REPLAY_WINDOW - timedelta(seconds=1)
    )

    assert deliveries.remember_delivery("msg_new") and not deliveries.remember_delivery("msg_new")
    assert set(WebhookDelivery.objects.values_list("message_id", flat=True)) == {"msg_new"}


def test_a_run_that_fails_as_a_whole_is_a_json_500_naming_its_audit_event(hook):
    from tests.factories import execute

    user_id = make_auth_user(keep=())
    execute(
        "CREATE FUNCTION public.refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "RAISE EXCEPTION 'permission denied for table wallets' USING ERRCODE = '42501'; END $$; "
        "CREATE TRIGGER refuse BEFORE INSERT ON public.wallets FOR EACH ROW EXECUTE FUNCTION public.refuse()"
    )

    response = post(hook, delivery(user_id), **bearer())

    assert response.status_code == 500 and response["Content-Type"] == "application/json"
    answer = response.json()
    event = AuditEvent.objects.get(channel="webhook", outcome=Outcome.FAILED)
    assert answer["status"] == "failed" and answer["audit_event"] == event.pk
    assert "permission denied for table wallets" in answer["error"] and answer["user_id"] == str(user_id)
    assert [count(t, [user_id]) for t in TABLES] == [0, 0, 0]


def test_a_spec_cycle_is_a_json_500_naming_its_audit_event(hook):
    from tests.factories import execute

    user_id = make_auth_user(keep=())
    execute(
        "ALTER TABLE public.profiles ADD CONSTRAINT profiles_user_fk "
        "FOREIGN KEY (user_id) REFERENCES public.users (id);"
        "ALTER TABLE public.users ADD CONSTRAINT users_profile_fk "
        "FOREIGN KEY (id) REFERENCES public.profiles (user_id)"
    )

    response = post(hook, delivery(user_id), **bearer(), REMOTE_ADDR="10.2.3.4")

    assert response.status_code == 500 and response["Content-Type"] == "application/json"
    answer = response.json()
    event = AuditEvent.objects.get(channel="webhook", outcome=Outcome.FAILED)
    assert answer["status"] == "failed" and answer["audit_event"] == event.pk
    assert "cycle" in answer["error"] and "cycle" in event.detail["error"]
    assert event.target_user_ids == [user_id] and event.client_address == "10.2.3.4"
    assert [count(t, [user_id]) for t in TABLES] == [0, 0, 0]


def test_a_content_length_that_is_not_a_number_is_a_400(hook):
    user_id = make_auth_user(keep=())

    response = post(hook, delivery(user_id), **bearer(), CONTENT_LENGTH="12abc")

    assert response.status_code == 400 and response.json() == {"error": "the Content-Length header is not a number"}
    assert [count(t, [user_id]) for t in TABLES] == [0, 0, 0]
