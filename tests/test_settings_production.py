"""The README's production path, run once on a fresh copy of the tree.

DEBUG off, the documented environment, `migrate`, `collectstatic` once, `check --deploy`,
then gunicorn on a free loopback port behind a pretend TLS proxy (it sends the
X-Forwarded-Proto and X-Forwarded-For headers a load balancer adds). A staff member signs
in through the login form with plain HTTP requests; the list page, a static file (hashed
name, served by WhiteNoise with a long cache header), /healthz and the security headers
are checked as a browser would receive them.
"""

from __future__ import annotations

import http.client
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

import pytest

from provisioning.models import AuditEvent
from tests.processes import PRODUCTION_SETTINGS, current_database_url, manage_env, run_manage

BASE_DIR = Path(__file__).resolve().parent.parent
HOST = "dashboard.example.com"
CLIENT = "203.0.113.5"
PROXY_HEADERS = {"Host": HOST, "X-Forwarded-Proto": "https", "X-Forwarded-For": CLIENT}

pytestmark = pytest.mark.usefixtures("clean_app_tables")


def production_env(**changes: str) -> dict:
    """The README's production environment (DEBUG unset), on the test database; `changes`
    override it ("" removes a variable)."""
    documented = {
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": HOST,
        "CSRF_TRUSTED_ORIGINS": f"https://{HOST}",
        "BEHIND_TLS_PROXY": "1",
        "TRUSTED_PROXIES": "127.0.0.1",  # this test is the proxy, on the loopback address
        "TRUSTED_PROXY_COUNT": "1",
        "SECURE_SSL_REDIRECT": "1",
        "SECURE_COOKIES": "1",
        "SECURE_HSTS_SECONDS": "31536000",
        # The proxy lives on another machine: gunicorn itself trusts X-Forwarded-Proto
        # only from 127.0.0.1 by default, and this test's requests come from there.
        "FORWARDED_ALLOW_IPS": "192.0.2.1",
        # The account actions (docs/fixing-accounts.md): without them `check` warns.
        "SUPABASE_URL": "https://abcdefghijklmnopqrst.supabase.co",
        "SUPABASE_SERVICE_ROLE_KEY": "test-service-role-key",
        "SUPABASE_ANON_KEY": "test-anon-key",
    }
    return manage_env(
        clean=True, settings=PRODUCTION_SETTINGS, database_url=current_database_url(), **{**documented, **changes}
    )


@pytest.fixture(scope="module")
def fresh_tree(tmp_path_factory) -> Path:
    """The tree as a fresh clone has it: tracked and new files, nothing generated."""
    tree = tmp_path_factory.mktemp("fresh") / "eloity-admin"
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=BASE_DIR,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, (n.decode() for n in listed)):
        source = BASE_DIR / name
        if source.is_file():
            (tree / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, tree / name)
    assert not (tree / "staticfiles").exists()
    return tree


def manage(tree: Path, env: dict, *args: str) -> str:
    done = run_manage(*args, env=env, cwd=tree, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


class Gunicorn:
    """gunicorn as the README starts it, on a free loopback port."""

    def __init__(self, tree: Path, env: dict):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.log = tree / f"gunicorn-{self.port}.log"
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                [
                    str(Path(sys.executable).parent / "gunicorn"),
                    "eloity_admin.wsgi",
                    "--bind",
                    f"127.0.0.1:{self.port}",
                    "--workers",
                    "2",
                ],
                cwd=tree,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        raise AssertionError(f"gunicorn did not start:\n{self.log.read_text()}")

    def request(
        self, method: str, path: str, *, headers=None, body: str | None = None, source: str | None = None
    ) -> http.client.HTTPResponse:
        """`source`: the loopback address the request comes from (127.0.0.1 when None)."""
        address = (source, 0) if source else None
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30, source_address=address)
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        response.text = response.read().decode("utf-8", "replace")
        conn.close()
        return response

    def stop(self) -> str:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
        return self.log.read_text()


def cookies_from(response, jar: dict) -> dict[str, str]:
    """Update `jar` with the response's cookies; return each new cookie's raw header."""
    raw = {}
    for header in response.headers.get_all("Set-Cookie") or []:
        cookie = SimpleCookie(header)
        for name, morsel in cookie.items():
            jar[name] = morsel.value
            raw[name] = header
    return raw


def cookie_header(jar: dict) -> str:
    return "; ".join(f"{k}={v}" for k, v in jar.items())


def test_the_readme_production_path_gives_a_working_dashboard(fresh_tree, provisioner):
    env = production_env()
    manage(fresh_tree, env, "migrate", "--noinput")
    manage(fresh_tree, env, "collectstatic", "--noinput")  # once, as the README says
    assert "no issues" in manage(fresh_tree, env, "check", "--deploy", "--fail-level", "WARNING")
    server = Gunicorn(fresh_tree, env)
    try:
        jar: dict[str, str] = {}
        # The sign-in form, over "https" as the proxy says.
        form = server.request("GET", "/admin/login/?next=/admin/provisioning/authuser/", headers=PROXY_HEADERS)
        assert form.status == 200, form.text[:2000]
        csrf_cookie = cookies_from(form, jar)["csrftoken"]
        assert "Secure" in csrf_cookie
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)

        signed_in = server.request(
            "POST",
            "/admin/login/?next=/admin/provisioning/authuser/",
            headers={
                **PROXY_HEADERS,
                "Content-Type": "application/x-www-form-urlencoded",
                "Cookie": cookie_header(jar),
                "Referer": f"https://{HOST}/admin/login/",
            },
            body=urlencode({"username": "prov", "password": "prov-password", "csrfmiddlewaretoken": token}),
        )
        assert signed_in.status == 302, signed_in.text[:2000]
        assert signed_in.headers["Location"] == "/admin/provisioning/authuser/"
        session_cookie = cookies_from(signed_in, jar)["sessionid"]
        assert "Secure" in session_cookie and "HttpOnly" in session_cookie and "SameSite=Lax" in session_cookie

        # A list page, with every security header.
        page = server.request(
            "GET", "/admin/provisioning/authuser/", headers={**PROXY_HEADERS, "Cookie": cookie_header(jar)}
        )
        assert page.status == 200, page.text[:2000]
        assert "Auth users" in page.text or "auth user" in page.text.lower()
        assert page.headers["Strict-Transport-Security"].startswith("max-age=31536000")
        csp = page.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
        assert "frame-ancestors 'none'" in csp
        assert page.headers["X-Frame-Options"] == "DENY"
        assert page.headers["X-Content-Type-Options"] == "nosniff"
        assert page.headers["Referrer-Policy"] == "same-origin"

        # A static file: hashed name, served by WhiteNoise, cached for ever.
        stylesheet = re.search(r'href="(/static/admin/css/base\.[0-9a-f]{12}\.css)"', page.text)
        assert stylesheet, "the admin's stylesheet is not linked by its hashed name"
        css = server.request("GET", stylesheet.group(1), headers=PROXY_HEADERS)
        assert css.status == 200 and "body" in css.text
        assert "max-age=315360000" in css.headers["Cache-Control"] and "immutable" in css.headers["Cache-Control"]
        script = re.search(r'src="(/static/provisioning/eloity\.[0-9a-f]{12}\.js)"', page.text)
        assert script and server.request("GET", script.group(1), headers=PROXY_HEADERS).status == 200

        health = server.request("GET", "/healthz", headers=PROXY_HEADERS)
        assert (health.status, health.text) == (200, "ok\n")

        # Plain http (no proxy header) is sent to https; a load balancer's plain probe is not.
        plain = server.request("GET", "/admin/", headers={"Host": HOST})
        assert plain.status == 301 and plain.headers["Location"] == f"https://{HOST}/admin/"
        probe = server.request("GET", "/healthz", headers={"Host": HOST})
        assert (probe.status, probe.text) == (200, "ok\n")
    finally:
        log = server.stop()
    assert "Traceback" not in log and "Internal Server Error" not in log, log
    # The audit log names the client behind the proxy, not the proxy.
    assert AuditEvent.objects.get(action="login").client_address == CLIENT


def test_through_gunicorn_a_client_that_skips_the_proxy_cannot_pick_its_address(fresh_tree):
    # The proxy connects from 127.0.0.2; a client reaching gunicorn's port itself, from 127.0.0.1.
    # Without the HTTPS redirect: the direct client's X-Forwarded-Proto is dropped too (it is not
    # a trusted proxy), so with it on it would only ever see the redirect.
    env = production_env(TRUSTED_PROXIES="127.0.0.2", METRICS_ALLOWED_IPS="10.9.9.9", SECURE_SSL_REDIRECT="")
    manage(fresh_tree, env, "collectstatic", "--noinput")
    server = Gunicorn(fresh_tree, env)
    try:
        forged = {**PROXY_HEADERS, "X-Forwarded-For": "10.9.9.9"}
        direct = server.request("GET", "/metrics", headers=forged, source="127.0.0.1")
        proxied = server.request("GET", "/metrics", headers=forged, source="127.0.0.2")
    finally:
        log = server.stop()

    assert (direct.status, proxied.status) == (401, 200), log
    assert "eloity_auth_users" in proxied.text


def test_through_gunicorn_a_client_that_skips_the_proxy_cannot_claim_https(fresh_tree):
    env = production_env(TRUSTED_PROXIES="127.0.0.2")
    manage(fresh_tree, env, "collectstatic", "--noinput")
    server = Gunicorn(fresh_tree, env)
    try:
        direct = server.request("GET", "/admin/login/", headers=PROXY_HEADERS, source="127.0.0.1")
        proxied = server.request("GET", "/admin/login/", headers=PROXY_HEADERS, source="127.0.0.2")
    finally:
        log = server.stop()

    assert (direct.status, proxied.status) == (301, 200), log
    assert direct.headers["Location"] == f"https://{HOST}/admin/login/"


def test_without_a_tls_proxy_the_forwarded_proto_header_is_not_trusted(fresh_tree):
    env = production_env(BEHIND_TLS_PROXY="", SECURE_SSL_REDIRECT="")
    manage(fresh_tree, env, "collectstatic", "--noinput")
    server = Gunicorn(fresh_tree, env)
    try:
        health = server.request("GET", "/healthz", headers=PROXY_HEADERS)
    finally:
        server.stop()

    assert health.status == 200
    assert "Strict-Transport-Security" not in health.headers  # the request is not https
    assert "Content-Security-Policy" in health.headers
