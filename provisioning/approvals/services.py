"""Writes of the two-person rule: ask, approve (which runs the action once), refuse, expire.

Every step is an AuditEvent in the step's own transaction. A request leaves "waiting" once:
the deciding transaction locks its row (SELECT … FOR UPDATE) and the state changes only in
an UPDATE guarded by the state it expects, so two staff approving at the same moment run
the action once; the second is told it was already decided.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from provisioning.actors import Actor
from provisioning.approvals import registry
from provisioning.audit.recording import record_denied, record_event
from provisioning.errors import first_line
from provisioning.models import ApprovalRequest, AuditEvent

Action = AuditEvent.Action
Outcome = AuditEvent.Outcome
State = ApprovalRequest.State

logger = logging.getLogger(__name__)

#: Who expires overdue requests in the audit log: no staff member decided it.
EXPIRY_ACTOR = Actor(username="approvals:expiry", channel=AuditEvent.Channel.TASK)


class ApprovalDenied(PermissionDenied):
    """The actor may not ask for, approve or refuse this request. A "denied" event was
    recorded."""


class OwnRequest(ApprovalDenied):
    """The requester tried to decide their own request."""


class NotWaiting(Exception):
    """The request was already decided, ran, or expired: nothing was done."""


class RequestExpired(NotWaiting):
    """The request expired before this decision (it is now marked expired)."""


def approvals_on() -> bool:
    """Is the two-person rule on? (APPROVALS; off for a one-person team.)"""
    return bool(getattr(settings, "APPROVALS", True))


def threshold_users() -> int:
    return int(getattr(settings, "APPROVAL_THRESHOLD_USERS", 1000))


def ttl_text() -> str:
    """APPROVAL_TTL as people write it: "24 h", "90 min"."""
    seconds = int(settings.APPROVAL_TTL.total_seconds())
    return f"{seconds // 3600} h" if seconds % 3600 == 0 else f"{seconds // 60} min"


def bulk_needs_approval(users: int) -> bool:
    """Does a bulk run over `users` users need a request? Only above the threshold, and
    only while approvals are on."""
    return approvals_on() and users > threshold_users()


def may(actor: Actor, permission: str) -> bool:
    """May `actor` ask for an action that needs `permission`? Staff need it; the command line
    acts with the database role's own rights, as it does for the action itself."""
    if actor.user is None:
        return actor.channel == AuditEvent.Channel.CLI
    return bool(actor.user.is_active and actor.user.has_perm(permission))


def is_requester(actor: Actor, request: ApprovalRequest) -> bool:
    user = actor.staff_user
    if user is not None and request.requested_by_id is not None:
        return user.pk == request.requested_by_id
    return actor.username == request.requested_by_username


def may_decide(actor: Actor, request: ApprovalRequest) -> bool:
    """May `actor` approve or refuse `request`? A named staff member, not the requester,
    holding the permission the action needs."""
    user = actor.staff_user
    return bool(
        user is not None
        and not is_requester(actor, request)
        and user.is_active
        and user.has_perm(registry.kind(request.kind).permission)
    )


def _clean_reason(reason: str | None, what: str) -> str:
    text = (reason or "").strip()
    if not text:
        raise ValueError(f"A reason is required to {what}.")
    return text


def request_approval(
    *, actor: Actor, kind: str, params: dict | None = None, reason: str, target_user_id: uuid.UUID | str | None = None
) -> ApprovalRequest:
    """Ask for `kind` to run with `params`. Returns the waiting request.

    The requester needs the kind's permission (a refusal is audited and raises
    ApprovalDenied). A reason is required (ValueError). What the action would act on is
    recorded as the request's snapshot. The request and its "asked" event commit together.
    """
    found = registry.kind(kind)
    params = dict(params or {})
    text = _clean_reason(reason, "ask for approval")
    if not may(actor, found.permission):
        record_denied(
            actor=actor,
            action=Action.APPROVAL_REQUESTED,
            detail={"kind": kind, "params": params},
            target_user_ids=[target_user_id] if target_user_id else [],
        )
        raise ApprovalDenied(f"You do not have permission to ask for this ({found.label}).")
    snapshot = found.snapshot(params) if found.snapshot else {}
    with transaction.atomic():
        request = ApprovalRequest.objects.create(
            kind=kind,
            params=params,
            target_user_id=target_user_id,
            summary=found.describe(params, snapshot),
            requested_by=actor.staff_user,
            requested_by_username=actor.username[:150],
            reason=text,
            expires_at=timezone.now() + settings.APPROVAL_TTL,
            snapshot=snapshot,
        )
        _audit(actor, Action.APPROVAL_REQUESTED, Outcome.SUCCEEDED, request, reason=text)
    return request


def _audit(actor: Actor, action: str, outcome: str, request: ApprovalRequest, *, reason: str = "", **extra):
    return record_event(
        actor=actor,
        action=action,
        outcome=outcome,
        tables=[],
        target_user_ids=[request.target_user_id] if request.target_user_id else [],
        detail={
            "request_id": request.pk,
            "kind": request.kind,
            "summary": request.summary,
            "requested_by": request.requested_by_username,
            **({"reason": reason} if reason else {}),
            **extra,
        },
    )


def _require_decider(actor: Actor, request: ApprovalRequest, action: str) -> None:
    """Record a "denied" event and raise unless `actor` may decide `request`."""
    found = registry.kind(request.kind)
    if actor.staff_user is None:
        why = "a decision needs a named staff account (on the command line: --as USERNAME)"
        error: type[ApprovalDenied] = ApprovalDenied
    elif is_requester(actor, request):
        why = "the requester cannot decide their own request"
        error = OwnRequest
    elif not (actor.user.is_active and actor.user.has_perm(found.permission)):
        why = f"deciding needs the permission the action needs ({found.permission})"
        error = ApprovalDenied
    else:
        return
    record_denied(
        actor=actor,
        action=action,
        detail={"request_id": request.pk, "kind": request.kind, "why": why},
        target_user_ids=[request.target_user_id] if request.target_user_id else [],
    )
    raise error(f"You cannot decide request {request.pk}: {why}.")


@dataclass
class _Locked:
    """What the deciding transaction found once it held the row."""

    expired: bool = False
    not_waiting: str = ""


def _lock_waiting(request_id: int) -> tuple[ApprovalRequest, _Locked]:
    """In the caller's transaction: the request, locked. A request past its time is marked
    expired here (audited, under the same lock)."""
    request = ApprovalRequest.objects.select_for_update().get(pk=request_id)
    if request.state != State.WAITING:
        return request, _Locked(not_waiting=request.get_state_display().lower())
    if request.expires_at <= timezone.now():
        _expire(request)
        return request, _Locked(expired=True)
    return request, _Locked()


def _transition(request: ApprovalRequest, expected: str, **changes) -> None:
    """Move `request` from `expected` to `changes["state"]` in one guarded UPDATE; a row
    already moved (by someone else) is a NotWaiting."""
    moved = ApprovalRequest.objects.filter(pk=request.pk, state=expected).update(**changes)
    if moved != 1:
        raise NotWaiting(f"Request {request.pk} was already decided.")
    for name, value in changes.items():
        setattr(request, name, value)


def _raise_unless_waiting(request: ApprovalRequest, locked: _Locked) -> None:
    if locked.expired:
        raise RequestExpired(f"Request {request.pk} expired at {request.expires_at:%Y-%m-%d %H:%M %Z}; ask again.")
    if locked.not_waiting:
        raise NotWaiting(f"Request {request.pk} is already {locked.not_waiting}: nothing was done.")


def approve(*, actor: Actor, request_id: int, reason: str = "") -> ApprovalRequest:
    """Approve the request and run its action, once, as `actor`. Returns the request in its
    final state: ran, failed (its `result["error"]` says why), or refused when the data
    changed since the request and its kind refuses then.

    ApprovalDenied (audited) when `actor` is the requester, or lacks the kind's permission,
    or is not a named staff member; RequestExpired when it expired (now marked so);
    NotWaiting when it was already decided (by someone approving at the same moment, say).
    """
    request = ApprovalRequest.objects.get(pk=request_id)
    _require_decider(actor, request, Action.APPROVAL_APPROVED)
    found = registry.kind(request.kind)
    text = (reason or "").strip()
    with transaction.atomic():
        request, locked = _lock_waiting(request_id)
        if not (locked.expired or locked.not_waiting):
            now = timezone.now()
            current = found.snapshot(request.params) if found.snapshot else {}
            changed = found.snapshot is not None and current != request.snapshot
            decided = {"decided_by": actor.staff_user, "decided_by_username": actor.username[:150], "decided_at": now}
            now_described = found.describe(request.params, current)
            if changed and found.on_change == "refuse":
                why = (
                    f"Not run: the data changed since the request (then: {request.summary}; now: {now_described}). "
                    "Ask again if it is still wanted."
                )
                _transition(
                    request,
                    State.WAITING,
                    state=State.REFUSED,
                    decision_reason=why,
                    result={"changed_since_request": True, "snapshot_now": current},
                    **decided,
                )
                _audit(actor, Action.APPROVAL_REFUSED, Outcome.SUCCEEDED, request, reason=why, changed=True)
                return request
            note = {"changed_since_request": f"ran against the data as it is now: {now_described}"} if changed else {}
            _transition(request, State.WAITING, state=State.APPROVED, decision_reason=text, result=note, **decided)
            _audit(actor, Action.APPROVAL_APPROVED, Outcome.SUCCEEDED, request, reason=text, changed=changed)
    _raise_unless_waiting(request, locked)
    return _run(actor, request, found)


def _run(actor: Actor, request: ApprovalRequest, found: registry.Kind) -> ApprovalRequest:
    """Run an approved request (its state is "approved": no one else will). Outside the
    deciding transaction: the action keeps its own transactions and audit events."""
    try:
        outcome = found.run(actor=actor, params=request.params)
    except Exception as exc:  # any failure of the action is the request's outcome, shown
        logger.warning("approved request %s failed: %s", request.pk, first_line(exc))
        result = {**request.result, "error": first_line(exc)}
        with transaction.atomic():
            _transition(request, State.APPROVED, state=State.FAILED, ran_at=timezone.now(), result=result)
            _audit(actor, Action.APPROVAL_RAN, Outcome.FAILED, request, error=result["error"])
        return request
    result = {**request.result, **(outcome or {})}
    with transaction.atomic():
        _transition(request, State.APPROVED, state=State.RAN, ran_at=timezone.now(), result=result)
        _audit(actor, Action.APPROVAL_RAN, Outcome.SUCCEEDED, request, result=result)
    return request


def refuse(*, actor: Actor, request_id: int, reason: str) -> ApprovalRequest:
    """Refuse the request, with a reason (ValueError without one). The same staff may refuse
    as may approve (ApprovalDenied, audited, otherwise); RequestExpired / NotWaiting as for
    `approve`. Returns the refused request."""
    text = _clean_reason(reason, "refuse a request")
    request = ApprovalRequest.objects.get(pk=request_id)
    _require_decider(actor, request, Action.APPROVAL_REFUSED)
    with transaction.atomic():
        request, locked = _lock_waiting(request_id)
        if not (locked.expired or locked.not_waiting):
            _transition(
                request,
                State.WAITING,
                state=State.REFUSED,
                decided_by=actor.staff_user,
                decided_by_username=actor.username[:150],
                decided_at=timezone.now(),
                decision_reason=text,
            )
            _audit(actor, Action.APPROVAL_REFUSED, Outcome.SUCCEEDED, request, reason=text)
    _raise_unless_waiting(request, locked)
    return request


def _expire(request: ApprovalRequest) -> None:
    _transition(request, State.WAITING, state=State.EXPIRED, decided_at=timezone.now())
    _audit(EXPIRY_ACTOR, Action.APPROVAL_EXPIRED, Outcome.SUCCEEDED, request, expires_at=request.expires_at.isoformat())


def expire_overdue() -> list[int]:
    """Mark every waiting request past its `expires_at` expired, one audit event each.
    Idempotent; skips rows another transaction is deciding. Returns the ids expired."""
    done = []
    with transaction.atomic():
        overdue = ApprovalRequest.objects.select_for_update(skip_locked=True).filter(
            state=State.WAITING, expires_at__lte=timezone.now()
        )
        for request in overdue:
            _expire(request)
            done.append(request.pk)
    return done
