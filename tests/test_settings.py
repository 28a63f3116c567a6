"""Configuration from the environment."""

from __future__ import annotations

import subprocess
from pathlib import Path

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
