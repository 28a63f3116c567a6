"""The actions that need a second pair of eyes today, registered at start-up (apps.py).

- orphan removal, always (while APPROVALS is on): rows whose user is gone, deleted for
  good. If the orphans changed since the request, it is refused unrun: the approver
  approved removing the rows they saw.
- "provision all missing" and "sync all drifted" above APPROVAL_THRESHOLD_USERS users: both
  only add or correct, idempotently, so a changed count runs against the data as it is now,
  and the request says so.
"""

from __future__ import annotations

from provisioning.actors import PROVISION_PERMISSION, REMOVE_ORPHANS_PERMISSION
from provisioning.approvals import snapshots
from provisioning.approvals.registry import register
from provisioning.drift import services as drift_services

REMOVE_ORPHANS = "remove_orphans"
PROVISION_ALL_MISSING = "provision_all_missing"
SYNC_ALL_DRIFTED = "sync_all_drifted"


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
