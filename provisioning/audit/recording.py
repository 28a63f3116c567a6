"""Recording audit events: every audit row the dashboard writes goes through here, from
provisioning runs, jobs, diagnostics and sign-ins alike."""

from __future__ import annotations

from collections.abc import Sequence

from django.db import transaction

from provisioning.actors import Actor
from provisioning.models import AuditEvent


def record_event(*, actor: Actor, action: str, outcome: str, tables: Sequence[str], **fields) -> AuditEvent:
    """Write one AuditEvent for `actor` (in the caller's transaction). Every audit row the
    app writes goes through here."""
    return AuditEvent.objects.create(
        actor=actor.staff_user,
        actor_username=actor.username[:150],
        channel=actor.channel,
        action=action,
        outcome=outcome,
        tables=list(tables),
        client_address=actor.address,
        **fields,
    )


def record_denied(
    *,
    actor: Actor,
    action: str,
    tables: Sequence[str] = (),
    detail: dict | None = None,
    target_user_ids: Sequence = (),
) -> AuditEvent:
    """Record that `actor` was refused `action` (on `target_user_ids`, if any). Commits on
    its own."""
    with transaction.atomic():
        return record_event(
            actor=actor,
            action=action,
            outcome=AuditEvent.Outcome.DENIED,
            tables=list(tables),
            detail=detail or {},
            target_user_ids=list(target_user_ids),
        )


def record_failed(*, actor: Actor, action: str, tables: Sequence[str], **fields) -> AuditEvent:
    """Record that `actor`'s `action` failed (its writes were rolled back). Commits on its
    own, after the failed transaction."""
    with transaction.atomic():
        return record_event(actor=actor, action=action, outcome=AuditEvent.Outcome.FAILED, tables=tables, **fields)
