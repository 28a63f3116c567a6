"""Provisioning on sign-up, from a Supabase Database Webhook on `auth.users` (or any sender
that signs with Standard Webhooks, as Supabase's HTTP Auth Hooks do).

What is trusted: only the authentication (a shared bearer secret, compared in constant
time, or a Standard Webhooks signature with a 5-minute timestamp tolerance) and only the
payload's `record.id`. The user is then read from `auth.users` and provisioned through the
same service as the admin's button: same spec, same plan checks, same idempotence, one
audit event with actor `webhook`. A replayed delivery writes nothing twice.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from provisioning.actors import Actor
from provisioning.audit.recording import record_denied
from provisioning.engine import services
from provisioning.hooks import bearer_matches
from provisioning.ids import parse_uuid
from provisioning.models import AuditEvent, AuthUser

#: The largest body accepted; a sign-up's record is a few kilobytes.
MAX_BODY_BYTES = 64 * 1024
#: One "denied" audit event per source address per this many seconds (a flood of bad
#: deliveries must not fill the audit table); the events say how many they stand for.
DENIED_EVENT_EVERY_SECONDS = 60
WEBHOOK_ACTOR = "webhook"


class Refused(Exception):
    """A delivery that is answered with an error and changes nothing."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Delivery:
    user_id: uuid.UUID
    signed_id: str  # the Standard Webhooks message id, or "" for a bearer delivery


def enabled() -> bool:
    """The endpoint exists only while a secret is configured."""
    return bool(settings.SIGNUP_WEBHOOK_SECRET or settings.SIGNUP_WEBHOOK_STANDARD_SECRET)


def authenticate(headers, body: bytes) -> str:
    """The method that authenticated the delivery ("bearer" or "standard"); Refused(401)
    when neither does."""
    if bearer_matches(headers, settings.SIGNUP_WEBHOOK_SECRET):
        return "bearer"
    standard = settings.SIGNUP_WEBHOOK_STANDARD_SECRET
    if standard and headers.get("webhook-signature"):
        try:
            Webhook(standard.removeprefix("v1,")).verify(
                body,
                {name: headers.get(name, "") for name in ("webhook-id", "webhook-timestamp", "webhook-signature")},
                json_parse=False,
            )
        except Exception:  # noqa: S110 - a malformed header is as bad as a wrong signature
            pass
        else:
            return "standard"
    raise Refused(401, "missing or wrong credentials")


def parse(body: bytes) -> uuid.UUID:
    """The new auth user's id from a Database Webhook body; Refused(400) for anything that
    is not an INSERT on auth.users with a UUID `record.id`. No other value is read."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise Refused(400, "the body is not JSON") from None
    if not isinstance(payload, dict):
        raise Refused(400, "the body is not a JSON object")
    if payload.get("type") != "INSERT":
        raise Refused(400, "only INSERT deliveries are handled")
    if payload.get("schema") != "auth" or payload.get("table") != "users":
        raise Refused(400, "only deliveries for auth.users are handled")
    record = payload.get("record")
    user_id = parse_uuid(record.get("id")) if isinstance(record, dict) and isinstance(record.get("id"), str) else None
    if user_id is None:
        raise Refused(400, "record.id is not a UUID")
    return user_id


def provision(user_id: uuid.UUID, *, address: str | None) -> tuple[int, dict]:
    """Provision the sign-up; (HTTP status, JSON answer). 202 when the auth user is not
    (yet) there: the watchdog will see it; nothing is created from the payload."""
    if not AuthUser.objects.filter(pk=user_id).exists():
        return 202, {"status": "not found in auth.users yet", "user_id": str(user_id)}
    actor = Actor(username=WEBHOOK_ACTOR, channel=AuditEvent.Channel.WEBHOOK, address=address)
    result = services.provision_users(actor=actor, user_ids=[user_id], action=AuditEvent.Action.SIGNUP_WEBHOOK)
    return 200, {
        "status": "provisioned" if result.ok else "partly provisioned",
        "user_id": str(user_id),
        "created": result.created,
        "not_provisioned": [item.as_dict() for item in result.not_provisioned],
    }


def record_refusal(*, address: str | None, reason: str) -> None:
    """A denied delivery in the audit log, at most one per source per minute: the event
    says how many refusals it stands for (counted per server process)."""
    key = f"eloity:webhook-denied:{address}"
    suppressed = cache.get(key, 0)
    since = timezone.now() - timezone.timedelta(seconds=DENIED_EVENT_EVERY_SECONDS)
    recent = AuditEvent.objects.filter(
        channel=AuditEvent.Channel.WEBHOOK,
        outcome=AuditEvent.Outcome.DENIED,
        client_address=address,
        created_at__gte=since,
    ).exists()
    if recent:
        cache.set(key, suppressed + 1, DENIED_EVENT_EVERY_SECONDS * 10)
        return
    cache.delete(key)
    actor = Actor(username=WEBHOOK_ACTOR, channel=AuditEvent.Channel.WEBHOOK, address=address)
    record_denied(
        actor=actor,
        action=AuditEvent.Action.SIGNUP_WEBHOOK,
        detail={"reason": reason, "deliveries": suppressed + 1},
    )
