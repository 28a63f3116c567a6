"""Reads of the two-person rule: the requests waiting, and one request for its page."""

from __future__ import annotations

from django.db.models import QuerySet
from django.utils import timezone

from provisioning.models import ApprovalRequest

State = ApprovalRequest.State


def waiting(limit: int | None = None) -> QuerySet:
    """Requests still waiting for a decision and not past their time, oldest first (the
    first asked is the first to expire)."""
    found = ApprovalRequest.objects.filter(state=State.WAITING, expires_at__gt=timezone.now()).order_by(
        "created_at", "id"
    )
    return found[:limit] if limit else found


def waiting_count() -> int:
    return ApprovalRequest.objects.filter(state=State.WAITING, expires_at__gt=timezone.now()).count()
