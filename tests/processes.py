"""`manage.py` (or gunicorn) in a child process, on a chosen database: the one place tests
and the benchmark build a child's environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote, urlencode

BASE_DIR = Path(__file__).resolve().parent.parent
TEST_SETTINGS = "eloity_admin.settings_test"
PRODUCTION_SETTINGS = "eloity_admin.settings"

#: What a child with `clean=True` never inherits from the developer's shell: its settings
#: are exactly the ones the test gives it.
_SETTING_PREFIXES = ("DJANGO_", "SECURE_", "DATABASE_", "CSRF_", "AXES_", "WHITENOISE_")
_SETTING_NAMES = {
    "DEBUG",
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "BEHIND_TLS_PROXY",
    "TRUSTED_PROXY_COUNT",
    "PYTEST_CURRENT_TEST",
}


def database_url(conninfo: dict) -> str:
    """A DATABASE_URL for psycopg-style connection info (host, port, user, password,
    dbname). A socket directory as host goes in the query string (django-environ passes
    ?host= through to psycopg)."""
    user = quote(conninfo.get("user") or "", safe="")
    password = f":{quote(conninfo['password'], safe='')}" if conninfo.get("password") else ""
    host = str(conninfo.get("host") or "localhost")
    port = str(conninfo.get("port") or 5432)
    if host.startswith("/"):
        return f"postgres://{user}{password}@/{conninfo['dbname']}?" + urlencode({"host": host, "port": port})
    return f"postgres://{user}{password}@{host}:{port}/{conninfo['dbname']}"


def current_database_url() -> str:
    """DATABASE_URL for the database this test session runs on."""
    from django.db import connection

    db = connection.settings_dict
    return database_url(
        {"host": db["HOST"], "port": db["PORT"], "user": db["USER"], "password": db["PASSWORD"], "dbname": db["NAME"]}
    )


def manage_env(*, database_url: str | None = None, settings: str = TEST_SETTINGS, clean: bool = False, **extra) -> dict:
    """The environment for a child process: this one's, or with `clean` none of the
    settings variables, then DJANGO_SETTINGS_MODULE, DATABASE_URL (when given) and `extra`
    (a value of "" removes that variable)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("DJANGO_")
        and not (clean and (k.startswith(_SETTING_PREFIXES) or k in _SETTING_NAMES))
        and k != "PYTEST_CURRENT_TEST"
    }
    env["DJANGO_SETTINGS_MODULE"] = settings
    if database_url is not None:
        env["DATABASE_URL"] = database_url
    env.update(extra)
    return {k: v for k, v in env.items() if v != ""}


def run_manage(*args: str, env: dict, cwd: Path = BASE_DIR, timeout: float = 120) -> subprocess.CompletedProcess:
    """`manage.py args` in `cwd`; its output captured as text."""
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
