"""`manage.py` (or gunicorn) in a child process, on a chosen database: the one place tests
and the benchmark build a child's environment."""

from __future__ import annotations

import contextlib
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
    "TRUSTED_PROXIES",
    "EMBEDDED_DATABASE",
    "METRICS_ALLOWED_IPS",
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
    if clean:
        # Nor a development .env that `make run` left in the checkout.
        env["ELOITY_DOTENV"] = str(BASE_DIR / "no-development-dotenv-in-tests")
    if database_url is not None:
        env["DATABASE_URL"] = database_url
    env.update(extra)
    return {k: v for k, v in env.items() if v != ""}


def run_manage(*args: str, env: dict, cwd: Path = BASE_DIR, timeout: float = 120) -> subprocess.CompletedProcess:
    """`manage.py args` in `cwd`; its output captured as text."""
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


@contextlib.contextmanager
def private_cluster(pgdata: Path):
    """A PostgreSQL cluster of the caller's own (the embedded server's binaries, data in
    `pgdata`): yields the pgserver handle, and stops the cluster on the way out, whatever
    happened inside. pgserver's own cleanup only stops the postmaster it started itself:
    a cluster restarted with pg_ctl would keep running long after the session."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver

        server = pgserver.get_server(pgdata, cleanup_mode="stop")
    try:
        yield server
    finally:
        try:
            server.cleanup()
        finally:
            stop_cluster(pgdata)


def stop_cluster(pgdata: Path, *, timeout: float = 30) -> None:
    """Stop whatever postmaster runs on `pgdata` (an immediate shutdown; killed if it
    does not stop within `timeout`). Nothing running: nothing to do."""
    import psutil

    postmaster = _postmaster(pgdata)
    if postmaster is None:
        return
    try:
        from pgserver._commands import pg_ctl

        # pg_ctl refuses to run as root: as root, run it as the data folder's owner (pgserver's).
        user = _owner(pgdata) if os.geteuid() == 0 else None
        pg_ctl(["-m", "immediate", "-w", "stop"], pgdata=pgdata, user=user, timeout=timeout)
    except Exception:  # the kill below is the fallback for any failure
        pass
    try:
        postmaster.wait(timeout=timeout)
    except psutil.TimeoutExpired:
        postmaster.kill()
        postmaster.wait(timeout=timeout)
    except psutil.NoSuchProcess:
        pass


def _owner(path: Path) -> str:
    import pwd

    return pwd.getpwuid(Path(path).stat().st_uid).pw_name


def _postmaster(pgdata: Path):
    """The running postmaster of the cluster in `pgdata` (its postmaster.pid), or None."""
    import psutil

    try:
        pid = int((Path(pgdata) / "postmaster.pid").read_text().splitlines()[0])
        process = psutil.Process(pid)
    except (OSError, ValueError, IndexError, psutil.NoSuchProcess):
        return None
    return process if process.name() in {"postgres", "postmaster"} else None


def private_prefix(pid: int | None = None) -> str:
    """The name prefix of a folder a test keeps outside pytest's temporary folder (a private
    cluster's data, which pgserver's user must be able to reach): the session's pid is in
    it, so `leftover_processes` finds what runs there."""
    return f"eloity-test-{os.getpid() if pid is None else pid}-"


def leftover_processes(pid: int, folder: Path) -> list:
    """Processes a test left running: descendants of `pid` (the pytest process), and any
    process whose command line names `folder` (the session's temporary folder: a server
    started there, e.g. a PostgreSQL cluster whose postmaster outlived its pg_ctl parent) or
    a folder named with `private_prefix(pid)`.
    The embedded server under the checkout's .data/ runs on purpose and is never listed."""
    import psutil

    keep = str(BASE_DIR / ".data")
    found = {}
    try:
        for child in psutil.Process(pid).children(recursive=True):
            found[child.pid] = child
    except psutil.NoSuchProcess:
        pass
    private = f"/{private_prefix(pid)}"
    for process in psutil.process_iter(["pid", "cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if f"{folder}/" in cmdline or private in cmdline:
            found[process.pid] = process
    leftovers = []
    for process in found.values():
        try:
            if process.status() == psutil.STATUS_ZOMBIE or any(
                keep in " ".join(p.cmdline()) for p in [process, *process.parents()]
            ):
                continue
        except psutil.Error:
            continue  # ended while we looked
        leftovers.append(process)
    return leftovers
