"""The actions that need a second pair of eyes today, registered at start-up (apps.py).

- orphan removal, always (while APPROVALS is on): rows whose user is gone, deleted for
  good. If the orphans changed since the request, it is refused unrun: the approver
  approved removing the rows they saw.
- "provision all missing" and "sync all drifted" above APPROVAL_THRESHOLD_USERS users: both
  only add or correct, idempotently, so a changed count runs against the data as it is now,
  and the request says so.
- account actions through Supabase Auth (docs/fixing-accounts.md): deleting a user and
  removing MFA, refused unrun when the account changed since the request (the approver
  approved acting on the account they saw); a ban longer than LONG_BAN, which runs against
  the account as it is now and says so. Shorter bans and unbans run at once.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from provisioning.account_actions import services as account_services
from provisioning.account_actions.selectors import email_of
from provisioning.actors import PROVISION_PERMISSION, REMOVE_ORPHANS_PERMISSION
from provisioning.approvals import snapshots
from provisioning.approvals.registry import register
from provisioning.drift import services as drift_services

REMOVE_ORPHANS = "remove_orphans"
PROVISION_ALL_MISSING = "provision_all_missing"
SYNC_ALL_DRIFTED = "sync_all_drifted"
ACCOUNT_DELETE = "account_delete"
ACCOUNT_REMOVE_MFA = "account_remove_mfa"
ACCOUNT_LONG_BAN = "account_long_ban"

#: A ban longer than this (or forever) needs a second staff member; shorter ones run at once.
LONG_BAN = timedelta(days=7)


def _orphans_summary(params: dict, snapshot: dict) -> str:
    tables = snapshot.get("tables") or {}
    total = sum(t["count"] for t in tables.values())
    each = ", ".join(f"{name}: {t['count']}" for name, t in tables.items())
    return f"Remove {total} orphaned row{'s' if total != 1 else ''}" + (f" ({each})" if each else "")


def _run_orphans(*, actor, params: dict) -> dict:
    result = drift_services.remove_orphans(actor=actor, tables=params.get("tables") or None)
    return {"summary": result.summary(), "counts": result.counts, "audit_event_ids": result.audit_event_ids}


def _provision_summary(params: dict, snapshot: dict) -> str:
    n = snapshot.get("users", 0)
    return f"Provision all missing: {n:,} user{'s' if n != 1 else ''} missing rows"


def _run_provision_all(*, actor, params: dict) -> dict:
    from provisioning import jobs  # when run, as the admin's button does

    job = jobs.start_provision_all_job(actor=actor, tables=params.get("tables") or None)
    return {"summary": f"Background job {job.pk} started.", "job_id": job.pk}


def _sync_summary(params: dict, snapshot: dict) -> str:
    n = snapshot.get("users", 0)
    return f"Sync all drifted: {n:,} user{'s' if n != 1 else ''} with values that differ from auth"


def _run_sync_all(*, actor, params: dict) -> dict:
    result = drift_services.sync_values(actor=actor, all_drifted=True)
    return {
        "summary": result.summary(),
        "changed": result.changed,
        "blocked_count": result.blocked_count,
        "audit_event_ids": result.audit_event_ids,
    }


register(
    REMOVE_ORPHANS,
    label="Remove orphaned rows",
    permission=REMOVE_ORPHANS_PERMISSION,
    run=_run_orphans,
    describe=_orphans_summary,
    snapshot=lambda params: snapshots.orphans(params.get("tables") or None),
    on_change="refuse",
)
register(
    PROVISION_ALL_MISSING,
    label="Provision all missing",
    permission=PROVISION_PERMISSION,
    run=_run_provision_all,
    describe=_provision_summary,
    snapshot=lambda params: snapshots.users_missing(params.get("tables") or None),
)
register(
    SYNC_ALL_DRIFTED,
    label="Sync all drifted",
    permission=PROVISION_PERMISSION,
    run=_run_sync_all,
    describe=_sync_summary,
    snapshot=lambda params: snapshots.users_drifted(),
)


# --- account actions -----------------------------------------------------------------------


def account_kind(name: str, *, duration: str | None = None) -> str | None:
    """The kind an account action (a name of account_actions.services.BY_NAME) asks for while
    approvals are on, or None when it runs at once. ValueError for a ban duration that is not
    one (the ban itself would refuse it)."""
    if name == "delete":
        return ACCOUNT_DELETE
    if name == "remove-mfa":
        return ACCOUNT_REMOVE_MFA
    if name == "ban":
        _, length = account_services.ban_duration(duration or "")
        return ACCOUNT_LONG_BAN if length is None or length > LONG_BAN else None
    return None


def account_params(*, user_id, reason: str, requested_by: str, **options) -> dict:
    """A request's params for an account action: the user, the requester's reason and name
    (the action, run by the approver, records both) and the action's own options (JSON)."""
    params = {"user_id": str(user_id), "email": email_of(user_id), "reason": (reason or "").strip()}
    params["requested_by"] = requested_by
    for key, value in options.items():
        params[key] = str(value) if isinstance(value, uuid.UUID) else value
    return params


def _account_reason(actor, params: dict) -> str:
    return f"{params['reason']} (asked by {params['requested_by']}, approved by {actor.username})"


def _who(params: dict) -> str:
    return f"{params.get('email') or 'no email'} ({params['user_id']})"


def _state(snapshot: dict) -> str:
    """What else the approver should know of the account, as the snapshot saw it."""
    if not snapshot.get("exists", True):
        return " (no longer in auth.users)"
    notes = [f"last changed {snapshot['updated_at'][:19]}"] if snapshot.get("updated_at") else []
    notes += [f"banned until {snapshot['banned_until'][:19]}"] if snapshot.get("banned_until") else []
    notes += ["soft-deleted"] if snapshot.get("deleted_at") else []
    return f" ({'; '.join(notes)})" if notes else ""


def _account_result(result) -> dict:
    return {"summary": result.summary, "audit_event_id": result.audit_event_id}


def _run_delete(*, actor, params: dict) -> dict:
    result = account_services.delete_user(
        actor=actor,
        user_id=uuid.UUID(params["user_id"]),
        reason=_account_reason(actor, params),
        soft=bool(params.get("soft")),
    )
    return _account_result(result)


def _describe_delete(params: dict, snapshot: dict) -> str:
    how = "Soft-delete" if params.get("soft") else "Delete"
    rows = sum((snapshot.get("app_rows") or {}).values())
    return f"{how} user {_who(params)} with their {rows} app row{'s' if rows != 1 else ''}{_state(snapshot)}"


def _run_remove_mfa(*, actor, params: dict) -> dict:
    factor = params.get("factor_id")
    result = account_services.remove_mfa_factor(
        actor=actor,
        user_id=uuid.UUID(params["user_id"]),
        reason=_account_reason(actor, params),
        factor_id=uuid.UUID(factor) if factor else None,
        every=bool(params.get("every")),
    )
    return _account_result(result)


def _mfa_snapshot(params: dict) -> dict:
    """The factors only: a sign-in meanwhile (which touches the user row) is no reason to ask
    again; a factor added, removed or verified is."""
    found = snapshots.account(params["user_id"])
    return {"exists": found["exists"], "factors": found.get("factors", [])}


def _describe_remove_mfa(params: dict, snapshot: dict) -> str:
    factors = len(snapshot.get("factors") or [])
    which = f"MFA factor {params['factor_id']}" if params.get("factor_id") else "every MFA factor"
    return f"Remove {which} of user {_who(params)} ({factors} factor{'s' if factors != 1 else ''})"


def _run_long_ban(*, actor, params: dict) -> dict:
    result = account_services.ban_user(
        actor=actor,
        user_id=uuid.UUID(params["user_id"]),
        reason=_account_reason(actor, params),
        duration=params["duration"],
    )
    return _account_result(result)


def _describe_long_ban(params: dict, snapshot: dict) -> str:
    return f"Ban user {_who(params)} for {params['duration']}{_state(snapshot)}"


register(
    ACCOUNT_DELETE,
    label="Delete a user",
    permission="provisioning.account_delete",
    run=_run_delete,
    describe=_describe_delete,
    snapshot=lambda params: snapshots.account(params["user_id"], app_rows=True),
    on_change="refuse",
)
register(
    ACCOUNT_REMOVE_MFA,
    label="Remove MFA",
    permission="provisioning.account_remove_mfa",
    run=_run_remove_mfa,
    describe=_describe_remove_mfa,
    snapshot=_mfa_snapshot,
    on_change="refuse",
)
register(
    ACCOUNT_LONG_BAN,
    label="Ban for more than 7 days",
    permission="provisioning.account_ban",
    run=_run_long_ban,
    describe=_describe_long_ban,
    snapshot=lambda params: snapshots.account(params["user_id"]),
    on_change="run",
)
