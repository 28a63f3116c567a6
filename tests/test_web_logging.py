"""The console `make run` prints: one line per refused request, never a traceback."""

from __future__ import annotations

import http.client
import socket
import subprocess
import sys
import time

import pytest
from django.conf import settings
from django.test import Client

from tests.processes import BASE_DIR, PRODUCTION_SETTINGS, current_database_url, manage_env

REFUSED = "/admin/provisioning/authuser/provision-all/"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _get(port: int, path: str, cookie: str, host: str | None = None) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", path, headers={"Cookie": f"sessionid={cookie}", **({"Host": host} if host else {})})
    status = conn.getresponse().status
    conn.close()
    return status


@pytest.mark.django_db(transaction=True)
def test_a_viewers_refused_request_is_one_console_line_without_a_traceback(viewer, tmp_path):
    client = Client()
    client.force_login(viewer)
    session = client.cookies["sessionid"].value
    port = _free_port()
    log = tmp_path / "runserver.log"
    # As `make run` starts it: the production settings module with DEBUG=1.
    env = manage_env(
        database_url=current_database_url(),
        settings=PRODUCTION_SETTINGS,
        clean=True,
        DEBUG="1",
        SECRET_KEY=settings.SECRET_KEY,
    )
    with log.open("w") as out:
        server = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
            cwd=BASE_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, log.read_text()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
        statuses = [_get(port, REFUSED, session) for _ in range(3)]
        statuses.append(_get(port, "/admin/", session, host="evil.example"))  # django.security
        time.sleep(0.5)
    finally:
        server.terminate()
        server.wait(timeout=20)

    console = log.read_text()
    assert statuses == [403, 403, 403, 400], console
    assert "Traceback" not in console, console
    assert [line for line in console.splitlines() if line.startswith("Invalid HTTP_HOST header")] == [
        "Invalid HTTP_HOST header: 'evil.example'. You may need to add 'evil.example' to ALLOWED_HOSTS."
    ], console
    lines = console.splitlines()
    # One line from the app per refusal, with its reason; runserver's own request line
    # for every request, as for any other.
    refusals = [line for line in lines if line.startswith("Forbidden")]
    assert (
        refusals == [f"Forbidden (Permission denied): {REFUSED}: You do not have permission to provision users."] * 3
    ), console
    requests = [line for line in lines if f'"GET {REFUSED} HTTP/1.1" 403' in line]
    assert len(requests) == 3 and all(line.startswith("[") for line in requests), console


@pytest.mark.parametrize(("status", "keeps_traceback"), [(403, False), (400, False), (500, True)])
def test_only_server_errors_keep_their_traceback(caplog, status, keeps_traceback):
    import logging

    try:
        raise RuntimeError("why")
    except RuntimeError:
        logging.getLogger("django.request").warning("Refused: %s", "/x", exc_info=True, extra={"status_code": status})

    (record,) = [r for r in caplog.records if r.name == "django.request"]
    assert (record.exc_info is not None) is keeps_traceback
    assert record.getMessage() == ("Refused: /x" if keeps_traceback else "Refused: /x: why")
