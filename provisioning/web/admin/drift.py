"""The auth user admin's pages beyond missing rows: syncing values that differ from the
auth user (one user's button, the bulk action, "Sync all drifted…") and the orphaned rows
page. Thin: each view parses, calls one drift service or selector, and renders."""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.dateparse import parse_datetime

import provisioning.web.admin.approvals as approval_views
from provisioning.actors import REMOVE_ORPHANS_PERMISSION, Actor, may_provision
from provisioning.approvals import kinds as approval_kinds
from provisioning.approvals import services as approvals
from provisioning.approvals import snapshots as approval_snapshots
from provisioning.drift import selectors as drift_selectors
from provisioning.drift import services as drift_services
from provisioning.engine import selectors
from provisioning.engine.services import ProvisioningFailed
from provisioning.web.admin.base import MAX_SELECTED

#: How many drifted users the "Sync all drifted…" page previews (the run itself takes all).
PREVIEW_USERS = 200


def _sync_or_message(request, **kwargs) -> drift_services.SyncResult | None:
    """Run sync_values; a database error becomes a message. A refusal (a PermissionDenied)
    propagates: the admin answers 403."""
    try:
        return drift_services.sync_values(actor=Actor.from_request(request), **kwargs)
    except ProvisioningFailed as exc:
        messages.error(request, f"Sync stopped by a database error, nothing of that batch was written: {exc}")
        return None


def _report(request, result: drift_services.SyncResult) -> None:
    """Green only when values were written; each blocked user as a warning."""
    if result.total_changed:
        messages.add_message(request, messages.SUCCESS if result.ok else messages.WARNING, result.summary())
    elif result.ok:
        messages.info(request, result.summary())
    else:
        messages.warning(request, result.summary())
    for item in result.blocked[:10]:
        messages.warning(request, f"Not synced: {item.user_id} ({item.table}): {item.reason}")
    if result.blocked_count > 10:
        messages.warning(request, f"… and {result.blocked_count - 10} more; see the audit log.")


def _page(model_admin, request, template: str, title: str, **context):
    return TemplateResponse(
        request,
        f"admin/provisioning/authuser/{template}",
        {**model_admin.admin_site.each_context(request), "opts": model_admin.opts, "title": title, **context},
    )


def _preview_context(result: drift_services.SyncResult) -> dict:
    ids = [c.user_id for c in result.changes] + [b.user_id for b in result.blocked]
    return {"result": result, "people": selectors.person_labels(list(dict.fromkeys(ids)))}


def sync_user_view(model_admin, request, user):
    """POST: sync one user's copied values (the button on the user's page)."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    result = _sync_or_message(request, user_ids=[user.pk])
    if result is not None:
        _report(request, result)
    return HttpResponseRedirect(reverse("admin:provisioning_authuser_change", args=[user.pk]))


def sync_all_view(model_admin, request):
    """GET: a preview (a dry run over the first drifted users, and the counts); POST: sync
    every drifted user."""
    if request.method == "POST":
        users = approval_snapshots.users_drifted()["users"] if approvals.approvals_on() else 0
        asked = approval_views.ask_for_bulk_run(
            request, Actor.from_request(request), kind=approval_kinds.SYNC_ALL_DRIFTED, users=users
        )
        if asked is not None:
            return asked
        result = _sync_or_message(request, all_drifted=True)
        if result is not None:
            _report(request, result)
        # Compared again, so that the list's note counts what is left.
        return HttpResponseRedirect(reverse("admin:provisioning_authuser_changelist") + "?status=drifted&recheck=1")
    if not request.user.has_perm("provisioning.view_authuser"):
        raise PermissionDenied
    per_column, _ = drift_selectors.drift_counts()
    may_sync = may_provision(request.user)
    first = list(
        selectors.population()
        .filter(drift_selectors.drifted_q())
        .order_by("pk")
        .values_list("pk", flat=True)[:PREVIEW_USERS]
    )
    # The preview is a dry run, which (like the run) needs the provision permission.
    result = _sync_or_message(request, user_ids=first, dry_run=True) if first and may_sync else None
    return _page(
        model_admin,
        request,
        "sync_all.html",
        "Sync all values that differ from auth",
        counts=per_column,
        total=sum(c.rows for c in per_column),
        previewed=len(first),
        may_sync=may_sync,
        # Rows differ for at least as many users: past the threshold, the run may need a request.
        needs_approval=approvals.bulk_needs_approval(sum(c.rows for c in per_column)),
        **(_preview_context(result) if result else {}),
    )


@admin.action(description="Sync values from auth for selected users", permissions=["provision"])
def sync_selected(model_admin, request, queryset):
    ids = list(queryset.values_list("pk", flat=True)[: MAX_SELECTED + 1])
    if len(ids) > MAX_SELECTED:
        model_admin.message_user(
            request, f"More than {MAX_SELECTED:,} users selected: use “Sync all drifted…” instead.", messages.ERROR
        )
        return None
    if request.POST.get("post") == "yes":
        result = _sync_or_message(request, user_ids=ids)
        if result is not None:
            _report(request, result)
        return None
    result = _sync_or_message(request, user_ids=ids, dry_run=True)
    if result is None:
        return None
    return _page(
        model_admin,
        request,
        "sync_selected.html",
        "Sync values from auth for the selected users?",
        selected_ids=ids,
        action_checkbox_name=admin.helpers.ACTION_CHECKBOX_NAME,
        back_url=request.get_full_path(),
        **_preview_context(result),
    )


def orphans_view(model_admin, request):
    """GET: the orphaned rows, counted per table, a sample in full. POST (with the
    permission): first a confirmation naming the row count and the secret columns whose
    values are lost; then, posted back with that count (`confirmed_rows`), the removal of
    them all, audited. A POST without the permission goes to the service, which audits the
    refusal (403)."""
    actor = Actor.from_request(request) if request.method == "POST" else None
    if actor is not None and not actor.may_remove_orphans():
        drift_services.remove_orphans(actor=actor)  # records the refusal and raises (403)
    if not request.user.has_perm("provisioning.view_authuser"):
        raise PermissionDenied
    found = drift_selectors.orphaned_rows()
    total = sum(v["count"] for v in found.values())
    confirmed = request.POST.get("confirmed_rows") if request.method == "POST" else None
    reason_error = None
    if actor is not None and total and confirmed == str(total) and approvals.approvals_on():
        # The two-person rule: the removal becomes a request another remover approves.
        try:
            asked = approvals.request_approval(
                actor=actor, kind=approval_kinds.REMOVE_ORPHANS, reason=request.POST.get("reason", "")
            )
        except ValueError as exc:
            reason_error = str(exc)
        else:
            messages.success(request, approval_views.asked_message(asked))
            return HttpResponseRedirect(reverse("admin:provisioning_approvalrequest_change", args=[asked.pk]))
    elif actor is not None and total and confirmed == str(total):
        try:
            result = drift_services.remove_orphans(actor=actor)
        except ProvisioningFailed as exc:
            messages.error(request, f"Nothing was removed: {exc}")
        else:
            messages.success(request, result.summary() + " The audit event keeps every removed row but its secrets.")
        return HttpResponseRedirect(reverse("admin:provisioning_authuser_orphans"))
    return _page(
        model_admin,
        request,
        "orphans.html",
        "Orphaned app rows",
        tables=[
            {
                "name": name,
                "count": values["count"],
                "key": values["key"],
                "withheld": values["withheld"],
                "rows": [
                    {
                        "key": row.get(values["key"]),
                        "email": row.get("email") or row.get("username") or "",
                        "created_at": _timestamp(row.get("created_at")),
                        "full": json.dumps(row, indent=1, sort_keys=True, default=str),
                    }
                    for row in values["sample"]
                ],
            }
            for name, values in found.items()
        ],
        total=total,
        # The columns whose values no audit event keeps: lost for good with their rows.
        withheld=[f"{name}.{column}" for name, values in found.items() for column in values["withheld"]],
        may_remove=request.user.has_perm(REMOVE_ORPHANS_PERMISSION),
        confirming=request.method == "POST" and bool(total),
        confirmed_other=confirmed if confirmed not in (None, str(total)) else None,
        approvals_on=approvals.approvals_on(),
        reason_error=reason_error,
    )


def _timestamp(value):
    """A row's timestamp as read from its JSON (ISO text) as a datetime, shown as on every
    other page (`local_time`); anything else as it is."""
    if isinstance(value, str):
        try:
            return parse_datetime(value) or value
        except ValueError:
            return value
    return value
