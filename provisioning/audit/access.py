"""Audit of access to the dashboard itself: sign-ins, failed sign-ins, sign-outs, and
exports of the audit log. Receivers are connected in `ProvisioningConfig.ready`.

What a failed sign-in records is the username typed (cleaned and cut to 150 characters),
the address and whether throttling refused it: never the password attempted. Django
already blanks it in the signal's `credentials`; we do not read that key at all.
"""

from __future__ import annotations

from django.db import transaction

from provisioning.actors import Actor, client_address
from provisioning.audit.recording import record_event
from provisioning.models import AuditEvent

Action = AuditEvent.Action
Outcome = AuditEvent.Outcome

#: The login form's username field; nothing else is read from a failed attempt.
USERNAME_KEY = "username"


def clean_username(value) -> str:
    """A typed username as a storable label: text without NUL bytes (PostgreSQL rejects
    them) or control characters, at most 150 characters."""
    text = "" if value is None else str(value)
    text = "".join(ch for ch in text if ch.isprintable())
    return text[:150]


def throttle_username(request, credentials=None) -> str | None:
    """The username django-axes counts failures under (AXES_USERNAME_CALLABLE).

    The admin's login form does not cap the username's length before authenticating, and
    axes stores it in a varchar(255): a 10,000-character guess would be a 500. Cleaned
    the same way as the audit log's copy.
    """
    value = credentials.get(USERNAME_KEY) if credentials else getattr(request, "POST", {}).get(USERNAME_KEY)
    return None if value is None else clean_username(value)


def record_access(*, request, action: str, outcome: str, user=None, username: str = "", detail=None) -> AuditEvent:
    """Write one access event (web channel) and commit it on its own.

    Committed even when the surrounding request later fails, so a refused or failed
    sign-in always leaves a trace.
    """
    actor = Actor(
        username=clean_username(username or (user.get_username() if user is not None else "")),
        channel=AuditEvent.Channel.WEB,
        user=user,
        address=client_address(request),
    )
    with transaction.atomic():
        return record_event(actor=actor, action=action, outcome=outcome, tables=(), detail=detail or {})


def on_user_logged_in(sender, request, user, **kwargs) -> None:
    record_access(request=request, action=Action.LOGIN, outcome=Outcome.SUCCEEDED, user=user)


def on_user_logged_out(sender, request, user, **kwargs) -> None:
    if user is None:
        # Signing out of a session that was not signed in: nothing happened.
        return
    record_access(request=request, action=Action.LOGOUT, outcome=Outcome.SUCCEEDED, user=user)


def on_user_login_failed(sender, credentials, request=None, **kwargs) -> None:
    typed = (credentials or {}).get(USERNAME_KEY, "")
    locked = bool(getattr(request, "axes_locked_out", False))
    record_access(
        request=request,
        action=Action.LOGIN_FAILED,
        outcome=Outcome.DENIED if locked else Outcome.FAILED,
        username=clean_username(typed) or "(no username)",
        detail={"throttled": True} if locked else {},
    )


def connect() -> None:
    from django.contrib.auth import signals

    signals.user_logged_in.connect(on_user_logged_in, dispatch_uid="eloity_audit_login")
    signals.user_logged_out.connect(on_user_logged_out, dispatch_uid="eloity_audit_logout")
    signals.user_login_failed.connect(on_user_login_failed, dispatch_uid="eloity_audit_login_failed")
