"""Provisioning on sign-up, from a Supabase Database Webhook on `auth.users` (or any sender
that signs with Standard Webhooks, as Supabase's HTTP Auth Hooks do).

What is trusted: only the authentication (a shared bearer secret, compared in constant
time, or a Standard Webhooks signature with a 5-minute timestamp tolerance) and only the
payload's `record.id`. The user is then read from `auth.users` and provisioned through the
same service as the admin's button: same spec, same plan checks, same idempotence, one
audit event with actor `webhook`. A replayed delivery writes nothing twice; a replayed
Standard Webhooks message (same id) is answered without provisioning or a second event.
What the endpoint remembers between deliveries is in the database (hooks/deliveries.py).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

from django.conf import settings
from standardwebhooks.webhooks import Webhook

from provisioning.actors import Actor
from provisioning.audit.recording import record_denied, record_failed
from provisioning.engine import services
from provisioning.engine.plans import SpecCycle
from provisioning.hooks import bearer_matches, deliveries
from provisioning.ids import parse_uuid
from provisioning.models import AuditEvent, AuthUser

#: The largest body accepted; a sign-up's record is a few kilobytes.
MAX_BODY_BYTES = 64 * 1024
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


def read_body(request) -> bytes | None:
    """The delivery's body, or None when it is over MAX_BODY_BYTES (never read further).

    A body sent chunked (`Transfer-Encoding: chunked`, no `Content-Length`) is read from
    the server's input stream when the server says that stream ends with the body
    (`wsgi.input_terminated`, as gunicorn does): Django alone reads such a body as empty.
    """
    declared = request.META.get("CONTENT_LENGTH") or ""
    if declared.strip():
        try:
            length = int(declared)
        except ValueError:
            raise Refused(400, "the Content-Length header is not a number") from None
        return request.body if length <= MAX_BODY_BYTES else None
    if not request.META.get("wsgi.input_terminated"):
        return request.body
    body = request.META["wsgi.input"].read(MAX_BODY_BYTES + 1)
    return body if len(body) <= MAX_BODY_BYTES else None


def provision_or_fail(user_id: uuid.UUID, *, address: str | None) -> tuple[int, dict]:
    """`provision`, with a run that fails as a whole (a database error, a spec whose tables
    cannot be written in any order) answered 500 in JSON with the audit event that records
    it, so the sender's retry log says why."""
    try:
        return provision(user_id, address=address)
    except services.ProvisioningFailed as exc:
        event_id = exc.result.audit_event_ids[-1] if exc.result.audit_event_ids else None
        error = f"provisioning stopped by a database error, nothing was written: {exc}"
    except SpecCycle as exc:
        actor = Actor(username=WEBHOOK_ACTOR, channel=AuditEvent.Channel.WEBHOOK, address=address)
        event = record_failed(
            actor=actor,
            action=AuditEvent.Action.SIGNUP_WEBHOOK,
            tables=[],
            target_user_ids=[user_id],
            detail={"error": str(exc)},
        )
        event_id, error = event.pk, f"nothing was written: {exc}"
    return 500, {"status": "failed", "user_id": str(user_id), "error": error, "audit_event": event_id}


def record_refusal(*, address: str | None, reason: str) -> None:
    """Count a denied delivery in the database (every server process counts in the same
    row: one per source address and minute) and, at the first refusal of a source's
    minute, record one "denied" event: a flood of bad deliveries does not fill the audit
    log. The event names its minute; the total counted for it is on the event's page, and
    the source's next event states the total of its previous minute."""
    minute, refusals = deliveries.count_refusal(source=address)
    if refusals > 1:
        return
    detail = {"reason": reason, "minute": minute.isoformat(), "first_refusal_of_minute": True}
    earlier = deliveries.earlier_refusals(source=address, before=minute)
    if earlier is not None:
        detail["earlier_minute"] = {"minute": earlier.minute.isoformat(), "refusals": earlier.refusals}
    actor = Actor(username=WEBHOOK_ACTOR, channel=AuditEvent.Channel.WEBHOOK, address=address)
    record_denied(actor=actor, action=AuditEvent.Action.SIGNUP_WEBHOOK, detail=detail)
