"""The audit record of the two things diagnostics do that are not reads: the simulated
sign-up and the schema cache reload."""

from __future__ import annotations

from django.db import transaction

from provisioning.actors import Actor
from provisioning.audit.recording import record_event
from provisioning.models import AuditEvent
from provisioning.spec import TABLE_NAMES

Action = AuditEvent.Action
Outcome = AuditEvent.Outcome


def record(actor: Actor, action: str, outcome: str, detail: dict) -> AuditEvent:
    """One AuditEvent naming every app table, committed on its own (a savepoint when a
    transaction is open)."""
    with transaction.atomic():
        return record_event(actor=actor, action=action, outcome=outcome, tables=TABLE_NAMES, detail=detail)
