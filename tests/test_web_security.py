"""Security: deploy checks, sign-in throttling, every URL behind a staff login and CSRF,
secrets from auth.users never shown. URLs come from walking the URLconf, never a list."""

from __future__ import annotations

import io
import logging
import re
import secrets
import subprocess
from dataclasses import dataclass
from itertools import product
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.db import connection
from django.test import Client, override_settings
from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse
from django.urls.resolvers import RegexPattern, RoutePattern

from provisioning.models import AuditEvent, AuthUser
from tests.factories import make_auth_user
from tests.processes import PRODUCTION_SETTINGS, manage_env, run_manage

pytestmark = pytest.mark.django_db

BASE_DIR = Path(settings.BASE_DIR)
MARKER = "MARKER-SECRET-123"

# --- walking the URLconf -----------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    path: str
    name: str  # "namespace:name", or the path when the pattern has no name


@dataclass
class Ids:
    auth_user: str
    audit_event: str
    staff_user: str
    content_type: str  # of AuthUser, whose primary key is a UUID


_ROUTE_TOKEN = re.compile(r"<(?:(?P<conv>\w+):)?(?P<name>\w+)>")
_REGEX_GROUP = re.compile(r"\(\?P<(?P<name>\w+)>(?P<body>[^()]*)\)")


def _route_values(converter: str | None, ids: Ids) -> list[str]:
    if converter == "int":
        return [ids.audit_event, ids.staff_user, "987654321"]
    if converter == "uuid":
        return [ids.auth_user, "00000000-0000-0000-0000-000000000000"]
    # str, path, slug: every kind of id the project has, and one that is none of them.
    return [ids.auth_user, ids.audit_event, ids.content_type, "bogus-id"]


def _regex_values(body: str) -> list[str]:
    alternatives = body.split("|")
    if all(re.fullmatch(r"[\w-]+", a) for a in alternatives):
        return alternatives
    return ["no-such-page/"]


def _fill(part, ids: Ids) -> list[str]:
    """Concrete strings for one pattern's text, one per combination of candidate values."""
    if isinstance(part, RoutePattern):
        text = str(part)
        tokens = list(_ROUTE_TOKEN.finditer(text))
        pieces, last = [], 0
        for token in tokens:
            pieces.append([text[last : token.start()]])
            pieces.append(_route_values(token["conv"], ids))
            last = token.end()
        pieces.append([text[last:]])
        return ["".join(combo) for combo in product(*pieces)]
    if isinstance(part, RegexPattern):
        text = str(part).lstrip("^").rstrip("$").replace("\\/", "/").replace("\\.", ".")
        groups = list(_REGEX_GROUP.finditer(text))
        pieces, last = [], 0
        for group in groups:
            pieces.append([text[last : group.start()]])
            pieces.append(_regex_values(group["body"]))
            last = group.end()
        pieces.append([text[last:]])
        return ["".join(combo) for combo in product(*pieces)]
    raise AssertionError(f"unknown pattern type {type(part)}")


def every_page(ids: Ids) -> list[Page]:
    """Every URL the project defines (get_resolver() walked recursively), its converters
    filled with a real auth user id, a real audit event id and a bogus value."""
    pages: dict[str, Page] = {}

    def walk(resolver: URLResolver, prefixes: list[str], namespace: str) -> None:
        for entry in resolver.url_patterns:
            heads = [p + s for p in prefixes for s in _fill(entry.pattern, ids)]
            if isinstance(entry, URLResolver):
                walk(entry, heads, f"{namespace}{entry.namespace}:" if entry.namespace else namespace)
            elif isinstance(entry, URLPattern):
                for head in heads:
                    path = "/" + head
                    pages.setdefault(path, Page(path, f"{namespace}{entry.name}" if entry.name else path))

    walk(get_resolver(), [""], "")
    return list(pages.values())


def url_name(path: str) -> str:
    match = resolve(path)
    return match.view_name


@pytest.fixture
def ids(db, django_user_model):
    auth_user = make_auth_user(keep=("users",), secrets=MARKER, meta={"full_name": "Marker Person"})
    event = AuditEvent.objects.create(
        actor_username="seed",
        channel=AuditEvent.Channel.CLI,
        action=AuditEvent.Action.PROVISION_USER,
        outcome=AuditEvent.Outcome.SUCCEEDED,
        target_user_ids=[auth_user],
        rows_created={"users": [str(auth_user)]},
    )
    staff = django_user_model.objects.create_user("someone-staff", password="pw-someone-1", is_staff=True)
    content_type = ContentType.objects.get_for_model(AuthUser)
    return Ids(
        auth_user=str(auth_user), audit_event=str(event.pk), staff_user=str(staff.pk), content_type=str(content_type.pk)
    )


@pytest.fixture
def pages(ids):
    found = every_page(ids)
    assert len(found) > 50, "the URLconf walk found too few URLs"
    return found


#: Pages any signed-in staff member may see whatever their permissions: none shows data.
NO_DATA_PAGES = {
    "admin:index",
    "admin:login",
    "admin:password_change",
    "admin:password_change_done",
    "admin:jsi18n",
    "healthz",
}
#: Pages an anonymous visitor may get a 200 from.
PUBLIC_PAGES = {"admin:login", "healthz"}


def table_counts() -> dict[str, int]:
    """Row counts of every table the dashboard could write, except the audit log and the
    bookkeeping tables every request may touch (sessions, sign-in throttling)."""
    counts = {}
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT table_schema, table_name FROM information_schema.tables
            WHERE table_schema IN ('public', 'auth', %s) AND table_type = 'BASE TABLE'
              AND table_name NOT IN ('django_session', 'provisioning_auditevent')
              AND table_name NOT LIKE 'axes%%'
            """,
            [settings.DJANGO_SCHEMA],
        )
        for schema, table in cursor.fetchall():
            cursor.execute(f'SELECT count(*) FROM "{schema}"."{table}"')
            counts[f"{schema}.{table}"] = cursor.fetchone()[0]
    return counts


def provisioning_post_data(ids: Ids) -> dict:
    """What the admin's forms post to provision: an action, selected users, confirmation."""
    return {"action": "provision_selected", "_selected_action": [ids.auth_user], "post": "yes", "index": "0"}


def writes_app_rows(name: str) -> bool:
    """URLs whose POST changes something: their names end in a verb (provision, cancel...)."""
    action = name.split(":")[-1].removeprefix("provisioning_")
    return re.search(r"(^|_)(provision|provision_all|cancel|start|run|reload|simulate)\w*$", action) is not None


def _names(pages: list[Page]) -> set[str]:
    return {p.name for p in pages}


def test_walk_finds_the_project_urls(pages):
    names = _names(pages)
    for expected in (
        "admin:provisioning_authuser_changelist",
        "admin:provisioning_authuser_provision",
        "admin:provisioning_auditevent_change",
        "admin:provisioning_auditevent_export",
        "healthz",
    ):
        assert expected in names


# --- 7. every page needs a staff login ---------------------------------------------------


def test_anonymous_visitors_get_the_login_page_or_an_error_never_data(client, pages):
    for page in pages:
        response = client.get(page.path, follow=True)
        final = response.request["PATH_INFO"]
        assert response.status_code != 500, page
        if response.status_code == 200:
            assert url_name(final) in {"admin:login", "healthz"}, (page, final)
        else:
            assert response.status_code in {401, 403, 404, 405}, (page, response.status_code)


def test_signed_in_non_staff_users_get_no_page_either(client, pages, django_user_model, support_groups):
    from django.contrib.auth.models import Group

    outsider = django_user_model.objects.create_user("outsider", password="pw-outsider-1", is_staff=False)
    outsider.groups.add(Group.objects.get(name="Support provisioners"))
    client.force_login(outsider)
    for page in pages:
        response = client.get(page.path, follow=True)
        assert response.status_code != 500, page
        if response.status_code == 200:
            assert url_name(response.request["PATH_INFO"]) in PUBLIC_PAGES, page


def test_staff_without_permissions_never_see_a_data_page(client, pages, django_user_model):
    staff = django_user_model.objects.create_user("bare-staff", password="pw-bare-staff-1", is_staff=True)
    client.force_login(staff)
    for page in pages:
        response = client.get(page.path)
        assert response.status_code != 500, page
        if response.status_code == 200:
            assert page.name in NO_DATA_PAGES, page


def test_viewer_can_read_every_page_without_a_500(viewer_client, pages):
    for page in pages:
        response = viewer_client.get(page.path)
        assert response.status_code != 500, page


def test_viewer_posts_write_nothing_and_provisioning_urls_refuse(client, viewer, pages, ids):
    make_auth_user(keep=())  # someone to provision, were the viewer allowed to
    before = table_counts()
    audit_before = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first()
    data = provisioning_post_data(ids)
    for page in pages:
        if "_auth_user_id" not in client.session:
            client.force_login(viewer)  # the walk includes the logout URL
        response = client.post(page.path, data)
        assert response.status_code != 500, page
        if writes_app_rows(page.name):
            assert response.status_code in {403, 404, 405}, (page, response.status_code)
        if page.name == "admin:provisioning_authuser_provision" and page.path.count(ids.auth_user):
            assert response.status_code == 403, page
    assert table_counts() == before
    new_events = AuditEvent.objects.filter(id__gt=audit_before or 0)
    assert set(new_events.values_list("outcome", flat=True)) <= {"denied", "succeeded"}
    assert not new_events.filter(outcome="succeeded").exclude(action__in=["login", "logout"]).exists()


@pytest.mark.parametrize("confirmed", [False, True])
@pytest.mark.parametrize(
    ("bulk_action", "audited_as"), [("provision_selected", "provision_selected"), ("sync_selected", "sync_values")]
)
@pytest.mark.parametrize("who", ["viewer", "staff without a group"])
def test_a_refused_bulk_action_is_a_403_and_a_denied_event(
    client, viewer, django_user_model, who, bulk_action, audited_as, confirmed
):
    staff = viewer if who == "viewer" else django_user_model.objects.create_user("bare", password="x", is_staff=True)
    client.force_login(staff)
    targets = [make_auth_user(keep=()), make_auth_user(keep=("users",))]
    before = table_counts()
    data = {"action": bulk_action, "_selected_action": [str(i) for i in targets], "index": "0"}
    if confirmed:  # the confirmation page's form: no index, "post": "yes"
        data = {"action": bulk_action, "_selected_action": [str(i) for i in targets], "post": "yes"}

    response = client.post(reverse("admin:provisioning_authuser_changelist"), data, REMOTE_ADDR="192.0.2.44")

    assert response.status_code == 403
    assert table_counts() == before
    event = AuditEvent.objects.get(outcome="denied")
    assert (event.action, event.actor_id, event.actor_username, event.channel) == (
        audited_as,
        staff.pk,
        staff.username,
        "web",
    )
    assert sorted(event.target_user_ids) == sorted(targets) and event.client_address == "192.0.2.44"
    assert event.detail == {"bulk_action": bulk_action, "selected": 2}


def test_an_allowed_bulk_action_records_no_denial(provisioner_client):
    user_id = make_auth_user(keep=())
    data = {"action": "provision_selected", "_selected_action": [str(user_id)], "post": "yes"}

    provisioner_client.post(reverse("admin:provisioning_authuser_changelist"), data)

    assert not AuditEvent.objects.filter(outcome="denied").exists()
    assert AuditEvent.objects.filter(outcome="succeeded", target_user_ids__contains=[user_id]).count() == 1


def test_provisioner_gets_write_nothing(provisioner_client, pages):
    make_auth_user(keep=())
    before = table_counts()
    for page in pages:
        response = provisioner_client.get(page.path)
        assert response.status_code != 500, page
    assert table_counts() == before


def test_every_post_without_a_csrf_token_is_refused(provisioner, pages, ids):
    make_auth_user(keep=())
    client = Client(enforce_csrf_checks=True)
    client.force_login(provisioner)
    before = table_counts()
    data = provisioning_post_data(ids)
    for page in pages:
        response = client.post(page.path, data)
        if page.name in MACHINE_ENDPOINTS:
            # No CSRF by design (a sender has no session): its secret is the check, and a
            # staff session without it gets nothing (404 while off, else 401).
            assert response.status_code in (401, 404), (page, response.status_code)
            continue
        assert response.status_code == 403, (page, response.status_code)
    assert table_counts() == before


#: Endpoints for machines, authenticated by a secret instead of a session and CSRF token.
MACHINE_ENDPOINTS = {"signup_hook"}


def test_provisioning_through_the_admin_form_with_csrf_works(provisioner):
    """The CSRF test above must be able to fail: the same post with a token goes through."""
    user_id = make_auth_user(keep=())
    client = Client(enforce_csrf_checks=True)
    client.force_login(provisioner)
    page = client.get(reverse("admin:provisioning_authuser_change", args=[user_id]))
    token = page.cookies["csrftoken"].value

    response = client.post(
        reverse("admin:provisioning_authuser_provision", args=[user_id]), {"csrfmiddlewaretoken": token}
    )

    assert response.status_code == 302
    assert AuditEvent.objects.filter(target_user_ids__contains=[user_id], outcome="succeeded").exists()


# --- 8. secrets never shown --------------------------------------------------------------


def _audit_rows_mentioning(text: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM provisioning_auditevent AS e WHERE row_to_json(e)::text LIKE %s", [f"%{text}%"]
        )
        return cursor.fetchone()[0]


def test_secret_columns_never_reach_a_page_export_command_audit_row_or_log(
    client, django_user_model, pages, ids, caplog
):
    caplog.set_level(logging.DEBUG)
    out = io.StringIO()
    call_command("provisioning_status", "--json", stdout=out)
    call_command("provision", "--user", ids.auth_user, "--json", "--dry-run", stdout=out)
    call_command("provision", "--user", ids.auth_user, "--json", stdout=out)
    assert ids.auth_user in out.getvalue() and MARKER not in out.getvalue()
    second = make_auth_user(keep=(), secrets=MARKER + "-2")
    make_auth_user(keep=(), secrets=MARKER + "-3")  # still missing rows: listed by the dry-run pages
    boss = django_user_model.objects.create_superuser("boss", password="pw-boss-1")
    client.force_login(boss)
    # Provision a marker user through the web too, so a web event carries its data.
    provision = client.post(reverse("admin:provisioning_authuser_provision", args=[second]))
    assert provision.status_code == 302

    seen = []
    for page in pages:
        response = client.get(page.path)
        body = b"".join(response.streaming_content) if response.streaming else response.content
        seen.append(page.path)
        assert MARKER.encode() not in body, page
    marker_user_page = client.get(reverse("admin:provisioning_authuser_change", args=[ids.auth_user]))
    assert marker_user_page.status_code == 200 and b"Marker Person" in marker_user_page.content

    export = client.get(reverse("admin:provisioning_auditevent_export"))
    exported = b"".join(export.streaming_content)
    assert ids.auth_user.encode() in exported and MARKER.encode() not in exported

    assert _audit_rows_mentioning(ids.auth_user) >= 2
    assert _audit_rows_mentioning(MARKER) == 0
    assert MARKER not in caplog.text
    assert len(seen) == len(pages)


# --- 6. sign-in throttling ---------------------------------------------------------------


def _sign_in(client, username, password, address="127.0.0.1"):
    return client.post(reverse("admin:login"), {"username": username, "password": password}, REMOTE_ADDR=address)


def test_repeated_failures_lock_that_account_from_that_address(client, viewer):
    statuses = [_sign_in(client, "view", "wrong-password").status_code for _ in range(settings.AXES_FAILURE_LIMIT)]
    # The failure that reaches the limit is itself answered with the lockout page.
    assert statuses == [200] * (settings.AXES_FAILURE_LIMIT - 1) + [429]

    locked = _sign_in(client, "view", "view-password")

    assert locked.status_code == 429
    assert "_auth_user_id" not in client.session
    throttled = AuditEvent.objects.filter(action="login_failed", outcome="denied").latest("id")
    assert throttled.detail == {"throttled": True}
    # Another address still signs in: an attacker cannot lock staff out from elsewhere.
    other = Client()
    assert _sign_in(other, "view", "view-password", address="10.9.8.7").status_code == 302


def test_failures_on_one_account_do_not_lock_another(client, viewer, provisioner):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _sign_in(client, "view", "wrong-password")

    assert _sign_in(client, "prov", "prov-password").status_code == 302


def test_a_success_before_the_limit_resets_the_count(client, viewer):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        _sign_in(client, "view", "wrong-password")
    assert _sign_in(client, "view", "view-password").status_code == 302
    client.logout()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        _sign_in(client, "view", "wrong-password")

    assert _sign_in(client, "view", "view-password").status_code == 302


PROXY = "10.0.0.2"  # the load balancer: every request reaches the server from it
DIRECT = "198.51.100.66"  # a client that reaches the server's port without the proxy
BEHIND_ONE_PROXY = override_settings(TRUSTED_PROXIES=[PROXY], TRUSTED_PROXY_COUNT=1)


def _sign_in_through_proxy(client, username, password, forwarded_for):
    return client.post(
        reverse("admin:login"),
        {"username": username, "password": password},
        REMOTE_ADDR=PROXY,
        HTTP_X_FORWARDED_FOR=forwarded_for,
    )


@BEHIND_ONE_PROXY
def test_behind_a_proxy_failures_lock_only_the_client_that_made_them(client, viewer):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _sign_in_through_proxy(client, "view", "wrong-password", "203.0.113.9")
    assert _sign_in_through_proxy(Client(), "view", "view-password", "203.0.113.9").status_code == 429

    # Everyone else reaches the server from the same proxy address, and still signs in.
    assert _sign_in_through_proxy(Client(), "view", "view-password", "198.51.100.7").status_code == 302

    failed = AuditEvent.objects.filter(action="login_failed").values_list("client_address", flat=True)
    assert set(failed) == {"203.0.113.9"}
    login = AuditEvent.objects.filter(action="login", outcome="succeeded").get()
    assert login.client_address == "198.51.100.7"


@BEHIND_ONE_PROXY
def test_behind_one_proxy_addresses_the_client_wrote_are_ignored(client, viewer):
    # The client sends its own X-Forwarded-For; the proxy appends the address it saw.
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _sign_in_through_proxy(client, "view", "wrong-password", "1.2.3.4, 203.0.113.9")

    assert _sign_in_through_proxy(Client(), "view", "view-password", "5.6.7.8, 203.0.113.9").status_code == 429
    assert _sign_in_through_proxy(Client(), "view", "view-password", "1.2.3.4, 198.51.100.7").status_code == 302


@override_settings(TRUSTED_PROXIES=[PROXY, "192.0.2.0/24"], TRUSTED_PROXY_COUNT=2)
def test_behind_two_proxies_the_client_is_the_second_address_from_the_right(client, viewer):
    _sign_in_through_proxy(client, "view", "view-password", "1.2.3.4, 203.0.113.9, 192.0.2.1")

    assert AuditEvent.objects.get(action="login").client_address == "203.0.113.9"


@BEHIND_ONE_PROXY
def test_a_client_that_skips_the_proxy_cannot_escape_the_lockout_with_the_header(client, viewer):
    def direct(password, forwarded_for):
        return Client().post(
            reverse("admin:login"),
            {"username": "view", "password": password},
            REMOTE_ADDR=DIRECT,
            HTTP_X_FORWARDED_FOR=forwarded_for,
        )

    statuses = [direct("wrong-password", f"10.9.9.{i}").status_code for i in range(settings.AXES_FAILURE_LIMIT + 2)]

    assert statuses[settings.AXES_FAILURE_LIMIT - 1 :] == [429] * 3
    assert direct("view-password", "10.9.9.200").status_code == 429
    failed = AuditEvent.objects.filter(action="login_failed").values_list("client_address", flat=True)
    assert set(failed) == {DIRECT}
    # The proxy's header is still honoured: a client behind it signs in, under its own address.
    assert _sign_in_through_proxy(Client(), "view", "view-password", "203.0.113.9").status_code == 302
    assert AuditEvent.objects.get(action="login").client_address == "203.0.113.9"


@override_settings(METRICS_ALLOWED_IPS=["10.9.9.9"], **BEHIND_ONE_PROXY.options)
def test_a_client_that_skips_the_proxy_cannot_read_metrics_by_naming_an_allowed_address(client):
    forged = client.get("/metrics", REMOTE_ADDR=DIRECT, HTTP_X_FORWARDED_FOR="10.9.9.9")
    through_proxy = client.get("/metrics", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="10.9.9.9")
    other_through_proxy = client.get("/metrics", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="10.9.9.8")

    assert (forged.status_code, through_proxy.status_code, other_through_proxy.status_code) == (401, 200, 401)


@override_settings(SIGNUP_WEBHOOK_SECRET="bearer-secret-for-tests-0123456789", **BEHIND_ONE_PROXY.options)
def test_webhook_refusals_from_a_client_that_skips_the_proxy_carry_its_real_address(client):
    from django.core.cache import cache

    cache.clear()
    hook = reverse("signup_hook")
    for i in range(20):
        client.post(
            hook, b"{}", content_type="application/json", REMOTE_ADDR=DIRECT, HTTP_X_FORWARDED_FOR=f"10.7.0.{i}"
        )
    client.post(hook, b"{}", content_type="application/json", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="203.0.113.9")

    from django.db.models import Sum

    from provisioning.models import WebhookRefusals

    denied = AuditEvent.objects.filter(channel="webhook", outcome="denied")
    assert set(denied.values_list("client_address", flat=True)) == {DIRECT, "203.0.113.9"}
    counted = dict(WebhookRefusals.objects.values_list("source").annotate(Sum("refusals")))
    assert counted == {DIRECT: 20, "203.0.113.9": 1}  # no refusal counted under a forged address
    cache.clear()


@override_settings(TRUSTED_PROXY_COUNT=1)
def test_a_trusted_proxy_range_covers_its_addresses_and_nothing_else(client, viewer):
    with override_settings(TRUSTED_PROXIES=["10.0.0.0/30"]):
        _sign_in_through_proxy(client, "view", "wrong-password", "203.0.113.9")
    with override_settings(TRUSTED_PROXIES=["10.0.0.4/30"]):
        _sign_in_through_proxy(client, "view", "wrong-password", "203.0.113.9")

    failed = AuditEvent.objects.filter(action="login_failed").order_by("id").values_list("client_address", flat=True)
    assert list(failed) == ["203.0.113.9", PROXY]


def test_without_a_trusted_proxy_the_forwarded_header_is_never_read(client, viewer):
    for i in range(settings.AXES_FAILURE_LIMIT):
        _sign_in_through_proxy(client, "view", "wrong-password", f"203.0.113.{i}")

    # Changing the header does not escape the lockout: the address is REMOTE_ADDR's.
    assert _sign_in_through_proxy(Client(), "view", "view-password", "198.51.100.7").status_code == 429
    failed = AuditEvent.objects.filter(action="login_failed").values_list("client_address", flat=True)
    assert set(failed) == {PROXY}


# --- 5. production settings --------------------------------------------------------------


def _env(**extra) -> dict:
    return manage_env(clean=True, **extra)


PRODUCTION_ENV = {
    "settings": PRODUCTION_SETTINGS,
    "ALLOWED_HOSTS": "dashboard.example.com",
    "BEHIND_TLS_PROXY": "1",
    "TRUSTED_PROXIES": "127.0.0.1",  # X-Forwarded-Proto is read only from them
    "SECURE_SSL_REDIRECT": "1",
    "SECURE_COOKIES": "1",
    "SECURE_HSTS_SECONDS": "31536000",
    "CSRF_TRUSTED_ORIGINS": "https://dashboard.example.com",
    "DATABASE_URL": "postgres://nobody@127.0.0.1:1/nothing",  # `check` reads it, never connects
    # The account actions (docs/fixing-accounts.md): without them `check` warns.
    "SUPABASE_URL": "https://abcdefghijklmnopqrst.supabase.co",
    "SUPABASE_SERVICE_ROLE_KEY": "test-service-role-key",
    "SUPABASE_ANON_KEY": "test-anon-key",
}


def _manage(*args, env) -> subprocess.CompletedProcess:
    return run_manage(*args, env=env)


def test_check_deploy_passes_with_the_production_settings():
    env = _env(**PRODUCTION_ENV, SECRET_KEY=secrets.token_urlsafe(50))

    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=env)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_fails_without_the_security_settings():
    """The test above can fail: drop HSTS and secure cookies and the check complains."""
    env = _env(**{**PRODUCTION_ENV, "SECURE_COOKIES": "0", "SECURE_HSTS_SECONDS": "0"})
    env["SECRET_KEY"] = secrets.token_urlsafe(50)

    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=env)

    assert result.returncode != 0
    assert "security.W004" in result.stderr + result.stdout and "security.W012" in result.stderr + result.stdout


def test_debug_off_without_a_secret_key_refuses_to_start():
    result = _manage("check", env=_env(**PRODUCTION_ENV))

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and "SECRET_KEY" in result.stderr


@pytest.mark.parametrize("weak", ["short-key", "a" * 60, "django-insecure-" + secrets.token_urlsafe(50)])
def test_debug_off_with_a_weak_secret_key_refuses_to_start(weak):
    result = _manage("check", env=_env(**PRODUCTION_ENV, SECRET_KEY=weak))

    assert result.returncode != 0
    assert "SECRET_KEY is too weak" in result.stderr


# --- 12. health check --------------------------------------------------------------------


def test_healthz_answers_ok_without_login_and_says_nothing_else(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.content == b"ok\n"
    assert response["Content-Type"].startswith("text/plain")
    assert client.post("/healthz").status_code in {403, 405}


@override_settings(SECURE_SSL_REDIRECT=True)
def test_healthz_answers_a_plain_http_probe_while_pages_redirect_to_https(client):
    response = client.get("/healthz")

    assert (response.status_code, response.content) == (200, b"ok\n")
    assert client.get("/admin/login/").status_code == 301


def test_an_unsafe_next_after_sign_in_lands_on_the_home_page(client, viewer):
    response = client.post(
        reverse("admin:login") + "?next=https://evil.example.com/steal",
        {"username": "view", "password": "view-password", "next": "https://evil.example.com/steal"},
    )

    assert response.status_code == 302
    assert response["Location"] == reverse("admin:index")
    assert client.get(response["Location"]).status_code == 200


def test_error_pages_are_in_the_admins_look_with_a_way_back(client, viewer_client, viewer):
    missing = viewer_client.get("/admin/provisioning/authuser/00000000-0000-0000-0000-000000000000/change/")
    refused = viewer_client.get(reverse("admin:auth_user_change", args=[viewer.pk]))

    for response, status, heading in ((missing, 404, "Nothing here"), (refused, 403, "You are not allowed")):
        html = response.content.decode()
        assert response.status_code == status
        assert heading in html and "Back to the support dashboard" in html and 'id="header"' in html


def test_a_throttled_sign_in_says_when_to_try_again(client, viewer):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        response = _sign_in(client, "view", "wrong-password")

    html = response.content.decode()
    assert response.status_code == 429
    assert "Too many failed sign-ins" in html and "Try again in 15 minutes." in html
    assert "Back to the support dashboard" in html


def test_the_500_page_renders_without_a_request_or_the_database():
    from django.template import loader

    html = loader.get_template("500.html").render({})

    assert "Something went wrong on our side" in html and "Back to the support dashboard" in html


@BEHIND_ONE_PROXY
def test_the_walk_as_a_client_that_skips_the_proxy_records_only_its_real_address(client, viewer, pages, ids):
    """Every page, GET and POST, as a viewer who reaches the server's port directly and
    names another address in X-Forwarded-For: no 500, nothing written, and every event the
    walk records (refusals, sign-outs) carries the client's own address, never the forged."""
    make_auth_user(keep=())
    before = table_counts()
    first_event = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    data = provisioning_post_data(ids)
    forged = {"REMOTE_ADDR": DIRECT, "HTTP_X_FORWARDED_FOR": "10.9.9.9"}
    for page in pages:
        for method in (client.get, client.post):
            if "_auth_user_id" not in client.session:
                client.force_login(viewer)  # the walk includes the logout URL
            response = method(page.path, data, **forged) if method is client.post else method(page.path, **forged)
            assert response.status_code != 500, (page, method)
    assert table_counts() == before
    recorded = set(AuditEvent.objects.filter(id__gt=first_event).values_list("client_address", flat=True))
    assert DIRECT in recorded and "10.9.9.9" not in recorded, recorded


# --- X-Forwarded-Proto, like X-Forwarded-For, only from a trusted proxy ----------------------


@override_settings(
    TRUSTED_PROXIES=[PROXY],
    TRUSTED_PROXY_COUNT=1,
    SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"),
    SECURE_SSL_REDIRECT=True,
)
@pytest.mark.django_db
def test_only_a_trusted_proxy_can_say_a_request_came_over_https():
    login = reverse("admin:login")

    through_proxy = Client().get(login, REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_PROTO="https")
    direct_claiming_https = Client().get(login, REMOTE_ADDR=DIRECT, HTTP_X_FORWARDED_PROTO="https")
    proxy_over_http = Client().get(login, REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_PROTO="http")

    assert through_proxy.status_code == 200
    # The direct client's header is dropped: plain HTTP, so it is sent to HTTPS.
    assert direct_claiming_https.status_code == 301
    assert direct_claiming_https["Location"] == f"https://testserver{login}"
    assert proxy_over_http.status_code == 301


def test_behind_a_tls_proxy_without_trusted_proxies_is_refused_in_one_line():
    env = _env(**{**PRODUCTION_ENV, "TRUSTED_PROXIES": ""}, SECRET_KEY=secrets.token_urlsafe(50))

    result = _manage("check", env=env)

    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    assert "BEHIND_TLS_PROXY=1 needs TRUSTED_PROXIES" in result.stderr
