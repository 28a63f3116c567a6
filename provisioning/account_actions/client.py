"""Supabase Auth, through the maintained client (`supabase_auth`): the settings it needs,
what is missing when they are absent, and every error it can raise turned into one
`AccountActionFailed` whose message never holds a key.

Retries: only calls that are idempotent are repeated (once, after a network error or a
timeout): `PUT /admin/users/{id}` (confirm, ban, unban set a state; repeating sets it
again). Deletes (a user, a factor) are not: a second try answers 404 for what the first
did. The e-mails (/resend, /recover) are not: a second try sends a second e-mail and counts
against the project's e-mail rate limit.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings

#: Where Auth answers under a project's URL (https://<project>.supabase.co/auth/v1).
AUTH_PATH = "/auth/v1"
WITHHELD = "[key withheld]"


class AccountActionFailed(Exception):
    """An account action did not happen (or, for several calls, not all of it: the message
    says what did). `kind`: unavailable, gone, refused, rate_limited, key, timeout, network,
    database. The message is for a person and never holds a key."""

    def __init__(self, message: str, *, kind: str = "refused", answer: dict | None = None, result=None):
        super().__init__(message)
        self.kind = kind
        self.answer = answer or {}
        self.result = result


@dataclass(frozen=True)
class Configuration:
    url: str
    service_key: str
    anon_key: str
    timeout: float

    @property
    def auth_url(self) -> str:
        return self.url.rstrip("/") + AUTH_PATH

    def secrets(self) -> list[str]:
        return [key for key in (self.service_key, self.anon_key) if key]


def configuration() -> Configuration:
    """The settings in force (read on each call, so `override_settings` works)."""
    return Configuration(
        url=(getattr(settings, "SUPABASE_URL", "") or "").strip(),
        service_key=(getattr(settings, "SUPABASE_SERVICE_ROLE_KEY", "") or "").strip(),
        anon_key=(getattr(settings, "SUPABASE_ANON_KEY", "") or "").strip(),
        timeout=float(getattr(settings, "SUPABASE_TIMEOUT_SECONDS", 10)),
    )


def unavailable_reason(*, public: bool = False) -> str:
    """Why the admin API (or, `public`, the e-mail endpoints) cannot be called; "" when it can."""
    config = configuration()
    missing = [] if config.url else ["SUPABASE_URL"]
    if public:
        missing += [] if config.anon_key else ["SUPABASE_ANON_KEY"]
    else:
        missing += [] if config.service_key else ["SUPABASE_SERVICE_ROLE_KEY"]
    if not missing:
        return ""
    verb = "is" if len(missing) == 1 else "are"
    return f"not set up: the server's {' and '.join(missing)} {verb} not set (docs/fixing-accounts.md)"


def withhold_keys(value: Any, config: Configuration | None = None) -> Any:
    """`value` (a string, or lists and dicts of them) with every key replaced by a marker: an
    error answer may echo the request's headers."""
    keys = (config or configuration()).secrets()
    if isinstance(value, str):
        for key in keys:
            value = value.replace(key, WITHHELD)
        return value
    if isinstance(value, dict):
        return {withhold_keys(k, config): withhold_keys(v, config) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [withhold_keys(v, config) for v in value]
    return value


def _http_client(config: Configuration):
    import httpx

    # No redirects: an answer sending the key elsewhere is not followed.
    return httpx.Client(timeout=config.timeout, follow_redirects=False)


def admin_api():
    """The admin API with the service-role key (a `SyncGoTrueAdminAPI`). AccountActionFailed
    when not set up. (The client is imported here, not at start-up: `manage.py check` and
    every page load without it.)"""
    from supabase_auth import SyncGoTrueAdminAPI

    reason = unavailable_reason()
    if reason:
        raise AccountActionFailed(f"Supabase Auth's admin API is {reason}.", kind="unavailable")
    config = configuration()
    headers = {"apikey": config.service_key, "Authorization": f"Bearer {config.service_key}"}
    return SyncGoTrueAdminAPI(url=config.auth_url, headers=headers, http_client=_http_client(config))


def public_api():
    """The public endpoints with the anon key (the e-mails a user receives)."""
    from supabase_auth import SyncGoTrueClient

    reason = unavailable_reason(public=True)
    if reason:
        raise AccountActionFailed(f"Supabase Auth's e-mail endpoints are {reason}.", kind="unavailable")
    config = configuration()
    headers = {"apikey": config.anon_key, "Authorization": f"Bearer {config.anon_key}"}
    return SyncGoTrueClient(
        url=config.auth_url,
        headers=headers,
        http_client=_http_client(config),
        auto_refresh_token=False,
        persist_session=False,
    )


def call(api, method: Callable[..., Any], *args, retry: bool = False) -> Any:
    """Run one client call and close the connection. Any failure is AccountActionFailed
    with one clear message (key withheld) and `answer` (status, code, message) for the
    audit event. `retry`: the call is idempotent; repeat it once after a network error or a
    timeout."""
    import httpx
    from supabase_auth.errors import AuthError, AuthRetryableError

    attempts = 2 if retry else 1
    try:
        for attempt in range(attempts):
            try:
                return method(*args)
            except AuthRetryableError as exc:
                if attempt + 1 < attempts:
                    time.sleep(0.2)
                    continue
                raise _failure(exc) from None
            except AuthError as exc:
                raise _failure(exc) from None
            except httpx.HTTPError as exc:  # the client lets some through (e.g. a bad URL)
                raise AccountActionFailed(
                    f"Supabase Auth could not be reached: {withhold_keys(str(exc) or type(exc).__name__)}.",
                    kind="network",
                    answer={"status": None, "message": withhold_keys(str(exc))},
                ) from None
    finally:
        api.close()


def _failure(exc) -> AccountActionFailed:
    """The one message for each way Auth can fail (`exc`: a supabase_auth AuthError)."""
    import httpx
    from supabase_auth.errors import AuthApiError, AuthRetryableError, AuthUnknownError

    status = getattr(exc, "status", None)
    cause = exc.__cause__
    if not status and isinstance(cause, httpx.HTTPStatusError):
        status = cause.response.status_code  # an error answer that was not JSON
    message = withhold_keys(str(getattr(exc, "message", "") or exc))
    code = getattr(exc, "code", None)
    answer = {"status": status, "code": code, "message": message}
    if isinstance(exc, AuthRetryableError) and not status:
        if isinstance(cause, httpx.TimeoutException):
            return AccountActionFailed(
                f"Supabase Auth did not answer within {configuration().timeout:g} s. Nothing was changed by "
                "this dashboard; try again (the account page shows the current state).",
                kind="timeout",
                answer={**answer, "status": None, "message": "timed out"},
            )
        return AccountActionFailed(
            f"Supabase Auth could not be reached ({message}). Check SUPABASE_URL and the network.",
            kind="network",
            answer={**answer, "status": None},
        )
    if status == 404:
        return AccountActionFailed(
            f"Supabase Auth has no such user (or factor) any more: {message}. Reload the page.",
            kind="gone",
            answer=answer,
        )
    if status in (401, 403):
        return AccountActionFailed(
            f"Supabase Auth refused the key ({status}): check SUPABASE_SERVICE_ROLE_KEY / SUPABASE_ANON_KEY "
            "for this project.",
            kind="key",
            answer=answer,
        )
    if status == 429:
        return AccountActionFailed(
            f"Supabase Auth's rate limit was reached ({message}): try again later.", kind="rate_limited", answer=answer
        )
    if isinstance(exc, AuthApiError | AuthUnknownError | AuthRetryableError):
        return AccountActionFailed(f"Supabase Auth refused ({status or 'error'}): {message}.", answer=answer)
    return AccountActionFailed(f"Supabase Auth refused: {message}.", answer=answer)
