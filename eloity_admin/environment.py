"""Strict readers for the settings' environment variables.

A value that is not what the setting needs stops the process with one `ImproperlyConfigured`
line naming the variable (manage.py and the WSGI entry point print it and exit 2), instead of
a traceback from deep inside django-environ or Django, or a silent fallback (django-environ
reads `DEBUG=yes please` as off, and warns about `DATABASE_URL=notaurl` before failing).
Values that may hold a password (URLs) are never repeated in the message.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import warnings
import zoneinfo
from datetime import timedelta
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured

_env = environ.Env()
_TRUE = {"1", "true", "yes", "on", "y", "ok"}
_FALSE = {"0", "false", "no", "off", "n"}
POSTGRES_SCHEMES = ("postgres", "postgresql", "pgsql", "psql")


def _raw(name: str) -> str | None:
    """The variable's value; unset or empty is None (the setting's default)."""
    value = os.environ.get(name)
    return None if value is None or not value.strip() else value.strip()


def boolean(name: str, default: bool = False) -> bool:
    raw = _raw(name)
    if raw is None:
        return default
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be 1 or 0 (or true/false, yes/no, on/off), not {raw!r}.")


def integer(name: str, default: int, *, minimum: int = 0) -> int:
    raw = _raw(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {raw!r}.") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be {minimum} or more, not {value}.")
    return value


_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}


def duration(name: str, default: str, *, minimum_seconds: int = 1) -> timedelta:
    """A duration written as a number and a unit (`90m`, `24h`, `2d`, `3600s`) or plain
    seconds (`3600`)."""
    raw = (_raw(name) or default).lower().replace(" ", "")
    unit = raw[-1] if raw[-1:] in _DURATION_UNITS else "s"
    number = raw[:-1] if raw[-1:] in _DURATION_UNITS else raw
    if not number.isdigit():
        raise ImproperlyConfigured(f"{name} must be a duration such as 24h, 90m, 2d or 3600 (seconds), not {raw!r}.")
    seconds = int(number) * _DURATION_UNITS[unit]
    if seconds < minimum_seconds:
        raise ImproperlyConfigured(f"{name} must be at least {minimum_seconds} second(s), not {raw!r}.")
    return timedelta(seconds=seconds)


def postgres_url(name: str) -> dict:
    """Django DATABASES settings for a PostgreSQL URL."""
    message = (
        f"{name} must be a PostgreSQL URL such as postgres://user:password@host:5432/dbname "
        "(its value is not shown: it may hold a password)."
    )
    raw = _raw(name) or ""
    if urlsplit(raw).scheme not in POSTGRES_SCHEMES:
        raise ImproperlyConfigured(message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # django-environ warns, then goes on, on what it cannot read
        try:
            config = _env.db_url_config(raw)
        except (ValueError, Warning):
            raise ImproperlyConfigured(message) from None
    if not config.get("NAME"):
        raise ImproperlyConfigured(message)
    return config


def email_url(name: str, default: str) -> dict:
    """Django's EMAIL_* settings for an email URL (smtp+tls://..., consolemail://)."""
    raw = _raw(name) or default
    try:
        return _env.email_url_config(raw)
    except (ImproperlyConfigured, ValueError):
        raise ImproperlyConfigured(
            f"{name} must be an email URL such as smtp+tls://user:password@smtp.example.com:587 or "
            "consolemail:// (its value is not shown: it may hold a password)."
        ) from None


def addresses(name: str) -> list[str]:
    """A comma-separated list of IP addresses, written as the app compares them."""
    found = []
    for item in _env.list(name, default=[]):
        try:
            found.append(str(ipaddress.ip_address(item.strip())))
        except ValueError:
            raise ImproperlyConfigured(f"{name}: {item!r} is not an IP address.") from None
    return found


def networks(name: str) -> list[str]:
    """A comma-separated list of IP addresses or CIDR ranges (10.0.0.0/8)."""
    found = []
    for item in _env.list(name, default=[]):
        try:
            found.append(str(ipaddress.ip_network(item.strip(), strict=False)))
        except ValueError:
            raise ImproperlyConfigured(f"{name}: {item!r} is not an IP address or a CIDR range.") from None
    return found


def time_zone(name: str, default: str) -> str:
    raw = _raw(name) or default
    try:
        zoneinfo.ZoneInfo(raw)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ImproperlyConfigured(
            f"{name} must be a time zone name such as UTC or Europe/Paris, not {raw!r}."
        ) from None
    return raw


def log_level(name: str, default: str) -> str:
    raw = (_raw(name) or default).upper()
    if raw not in logging.getLevelNamesMapping() or raw == "NOTSET":
        raise ImproperlyConfigured(f"{name} must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, not {raw!r}.")
    return raw
