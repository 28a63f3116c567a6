"""Configuration from the environment."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.processes import PRODUCTION_SETTINGS, manage_env, run_manage

ROOT = Path(__file__).resolve().parent.parent


def django_check(env_extra: dict, drop: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    env = manage_env(settings=PRODUCTION_SETTINGS, **dict.fromkeys(drop, ""), **env_extra)
    return run_manage("check", env=env)


def test_debug_is_off_by_default_and_then_secret_key_is_required():
    result = django_check({}, drop=("DEBUG", "SECRET_KEY", "ALLOWED_HOSTS"))
    assert result.returncode != 0
    assert "SECRET_KEY and ALLOWED_HOSTS must be set" in result.stderr


def test_django_schema_cannot_be_public():
    result = django_check({"DEBUG": "1", "DJANGO_SCHEMA": "public"})
    assert result.returncode != 0
    assert "DJANGO_SCHEMA" in result.stderr


def test_a_command_without_the_settings_it_needs_says_so_in_one_line():
    result = run_manage("provisioning_status", env=manage_env(clean=True, settings=PRODUCTION_SETTINGS))

    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "ImproperlyConfigured: With DEBUG off, SECRET_KEY and ALLOWED_HOSTS must be set in the environment "
        "(or set DEBUG=1 for local development)."
    ]


def _checkout_copy(tmp_path: Path) -> Path:
    """The checkout as a newcomer has it after cloning: the code, the Makefile and the
    project's virtualenv (linked), no .env."""
    import shutil

    tree = tmp_path / "checkout"
    tree.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("eloity_admin", "provisioning", "templates"):
        shutil.copytree(ROOT / name, tree / name, ignore=ignore)
    for name in ("manage.py", "Makefile", "requirements.txt"):
        shutil.copy(ROOT / name, tree / name)
    (tree / ".venv").symlink_to(ROOT / ".venv")
    return tree


def _pasted(tree: Path, line: str, **extra) -> subprocess.CompletedProcess:
    """`line` typed into a fresh shell in `tree`: the user's PATH without the virtualenv,
    none of the settings variables (`extra` adds some)."""
    path = ":".join(p for p in os.environ["PATH"].split(":") if ".venv" not in p)
    env = {"PATH": path, "HOME": os.environ.get("HOME", "/root"), "LANG": "C.UTF-8", **extra}
    return subprocess.run(["bash", "-c", line], cwd=tree, env=env, capture_output=True, text=True, timeout=180)


#: A runnable form of each command in the README's "Command line at a glance" (a new line
#: there needs one here); None: a long-running or data-replacing command, shown with --help.
README_COMMANDS = {
    "provisioning_status": "provisioning_status --json",
    "provision": "provision --all-missing --dry-run",
    "provisioning_doctor": "provisioning_doctor",
    "sync_values": "sync_values --all-drifted --dry-run",
    "remove_orphans": "remove_orphans --dry-run",
    "approvals": "approvals list",
    "account": None,  # changes an account through Supabase Auth: shown with --help
    "provisioning_trigger_sql": "provisioning_trigger_sql",
    "provisioning_webhook_sql": "provisioning_webhook_sql --url https://dashboard.example.com/hooks/signup/",
    "provisioning_watchdog": None,
    "db_worker": None,
    "resume_jobs": "resume_jobs",
    "load_demo": None,
}


def _readme_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Command line at a glance", 1)[1].split("\n## ", 1)[0]
    return [line.split()[2] for line in section.splitlines() if line.startswith("python manage.py ")]


def test_the_readme_command_lines_work_as_pasted_after_make_run(clean_app_tables, tmp_path):
    from tests.processes import current_database_url

    tree = _checkout_copy(tmp_path)
    commands = _readme_commands()
    assert commands and set(commands) == set(README_COMMANDS)
    # The one step the README names: `make run` (or `make demo`) writes the development .env.
    made = _pasted(tree, "make .env")
    assert made.returncode == 0, made.stdout + made.stderr

    # The test database, not a new embedded server; the webhook's SQL needs its secret.
    database = {"DATABASE_URL": current_database_url(), "SIGNUP_WEBHOOK_SECRET": "w" * 40}
    for name in commands:
        line = f"python manage.py {README_COMMANDS[name] or name + ' --help'}"
        done = _pasted(tree, f". .venv/bin/activate && {line}", **database)
        allowed = {0, 1} if name == "provisioning_doctor" else {0}
        assert done.returncode in allowed, (line, done.stdout[-2000:], done.stderr[-2000:])
        assert "Traceback" not in done.stderr, (line, done.stderr)


def test_a_production_process_never_reads_the_development_dotenv(tmp_path):
    tree = _checkout_copy(tmp_path)
    assert _pasted(tree, "make .env").returncode == 0
    debug = (
        ". .venv/bin/activate && "
        "python manage.py shell -v 0 -c 'from django.conf import settings; print(settings.DEBUG)'"
    )
    production = {"SECRET_KEY": "p" * 20 + "roduction-secret-key-with-fifty-characters", "ALLOWED_HOSTS": "x.example"}
    database = {"DATABASE_URL": "postgres://nobody@127.0.0.1:1/nothing"}  # settings only: never connects

    # DEBUG off in the environment: the .env's DEBUG=1 is not read, and it still refuses.
    refused = _pasted(tree, debug, DEBUG="0", **database)
    assert refused.returncode == 2
    assert "SECRET_KEY and ALLOWED_HOSTS must be set" in refused.stderr
    # Production's variables set, DEBUG unset: DEBUG stays off.
    assert _pasted(tree, debug, **production, **database).stdout.strip() == "False"
    # A developer's shell, nothing set: the .env's DEBUG=1.
    assert _pasted(tree, debug, **database).stdout.strip() == "True"
    # A .env that does not say it is for development is not read.
    (tree / ".env").write_text("DEBUG=1\n")
    unmarked = _pasted(tree, debug, **database)
    assert unmarked.returncode == 2
    assert "SECRET_KEY and ALLOWED_HOSTS must be set" in unmarked.stderr


#: DEBUG off with everything required set; `check` reads the settings and never connects.
PRODUCTION = {
    "SECRET_KEY": "p" * 20 + "roduction-secret-key-with-fifty-characters",
    "ALLOWED_HOSTS": "x.example",
    "DATABASE_URL": "postgres://nobody@127.0.0.1:1/nothing",
}


def _production_check(**changes) -> subprocess.CompletedProcess:
    return run_manage("check", env=manage_env(clean=True, settings=PRODUCTION_SETTINGS, **{**PRODUCTION, **changes}))


def test_the_production_environment_used_below_passes():
    assert _production_check().returncode == 0


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TRUSTED_PROXY_COUNT", "abc"),
        ("TRUSTED_PROXY_COUNT", "-1"),
        ("TRUSTED_PROXIES", "10.0.0.0/8,notanip"),
        ("DATABASE_URL", "notaurl"),
        ("DATABASE_URL", "mysql://user@host/db"),
        ("DATABASE_URL", "postgres://user:secret-password@host:notaport/db"),
        ("CONN_MAX_AGE", "1.5"),
        ("PROVISIONING_BATCH_SIZE", "0"),
        ("METRICS_CACHE_SECONDS", "thirty"),
        ("METRICS_ALLOWED_IPS", "10.0.0.0/8"),
        ("AXES_FAILURE_LIMIT", "five"),
        ("AXES_COOLOFF_MINUTES", "0"),
        ("SECURE_HSTS_SECONDS", "1y"),
        ("DEBUG", "yes please"),
        ("BEHIND_TLS_PROXY", "maybe"),
        ("SECURE_SSL_REDIRECT", "2"),
        ("SECURE_COOKIES", "sure"),
        ("SECURE_HSTS_PRELOAD", "nope"),
        ("DISABLE_SERVER_SIDE_CURSORS", "si"),
        ("EMAIL_URL", "notaurl"),
        ("TIME_ZONE", "Mars/Olympus_Mons"),
        ("LOG_LEVEL", "LOUD"),
        ("EMBEDDED_DATABASE", "perhaps"),
        ("APPROVALS", "sometimes"),
        ("APPROVAL_TTL", "a day"),
        ("APPROVAL_THRESHOLD_USERS", "lots"),
    ],
)
def test_a_malformed_setting_is_one_line_naming_it_and_exit_2(name, value):
    changes = {name: value}
    if name == "EMBEDDED_DATABASE":
        changes["DATABASE_URL"] = ""

    result = _production_check(**changes)

    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ImproperlyConfigured: ") and name in lines[0], result.stderr
    assert "secret-password" not in result.stderr


def test_trusted_proxy_count_without_trusted_proxies_refuses_to_start():
    result = _production_check(TRUSTED_PROXY_COUNT="1")

    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "ImproperlyConfigured: TRUSTED_PROXY_COUNT=1 needs TRUSTED_PROXIES, the proxies' addresses or CIDR "
        "ranges (e.g. TRUSTED_PROXIES=127.0.0.1): X-Forwarded-For is read only from them."
    ]
    assert _production_check(TRUSTED_PROXY_COUNT="1", TRUSTED_PROXIES="127.0.0.1").returncode == 0
    assert _production_check(TRUSTED_PROXIES="10.0.0.0/8, 192.0.2.1").returncode == 0


def test_debug_off_without_database_url_is_one_line_and_starts_no_database(tmp_path):
    tree = _checkout_copy(tmp_path)
    env = manage_env(clean=True, settings=PRODUCTION_SETTINGS, **{**PRODUCTION, "DATABASE_URL": ""})

    result = run_manage("provisioning_status", env=env, cwd=tree)

    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "ImproperlyConfigured: With DEBUG off, DATABASE_URL must be set (postgres://user:password@host:5432/dbname); "
        "the embedded PostgreSQL is for local development (DEBUG=1)."
    ]
    assert not (tree / ".data").exists()  # no embedded server was started


def test_gunicorn_with_a_malformed_setting_says_so_in_one_line(tmp_path):
    import sys

    env = manage_env(clean=True, settings=PRODUCTION_SETTINGS, **{**PRODUCTION, "TRUSTED_PROXY_COUNT": "abc"})
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    done = subprocess.run(
        [gunicorn, "eloity_admin.wsgi", "--bind", "127.0.0.1:0", "--workers", "1", "--preload"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode != 0
    assert "ImproperlyConfigured: TRUSTED_PROXY_COUNT must be a whole number, not 'abc'." in done.stderr
    assert "Traceback" not in done.stderr, done.stderr
