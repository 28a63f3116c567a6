"""Configuration from the environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def django_check(env_extra: dict, drop: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("DJANGO_")}
    env.update({"DJANGO_SETTINGS_MODULE": "eloity_admin.settings", **env_extra})
    return subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_debug_is_off_by_default_and_then_secret_key_is_required():
    result = django_check({}, drop=("DEBUG", "SECRET_KEY", "ALLOWED_HOSTS"))
    assert result.returncode != 0
    assert "SECRET_KEY and ALLOWED_HOSTS must be set" in result.stderr


def test_django_schema_cannot_be_public():
    result = django_check({"DEBUG": "1", "DJANGO_SCHEMA": "public"})
    assert result.returncode != 0
    assert "DJANGO_SCHEMA" in result.stderr
