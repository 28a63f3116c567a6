"""Requests waiting for a second staff member (the two-person rule, docs/approvals.md): a
list in the admin, and a request's page with Approve / Refuse for staff who hold the
action's permission and did not ask. Thin: each POST calls one approvals service."""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from provisioning.actors import VIEW_PERMISSION, Actor
from provisioning.approvals import registry, services
from provisioning.models import ApprovalRequest
from provisioning.web.admin.base import ReadOnlyMixin, time_field

State = ApprovalRequest.State


@admin.register(ApprovalRequest)
class ApprovalRequestAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Every request, newest first; staff who may see the dashboard may see them."""

    list_display = (
        "number",
        "summary",
        "state",
        "requested_by_username",
        time_field("created_at", "asked"),
        time_field("expires_at", "expires"),
        "decided_by_username",
    )
    list_display_links = ("number", "summary")
    list_filter = ("state", "kind")
    ordering = ("-created_at", "-id")
    list_per_page = 50
    show_full_result_count = False

    @admin.display(description="request", ordering="id")
    def number(self, obj):
        return f"#{obj.pk}"

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.has_perm(VIEW_PERMISSION)

    def has_module_permission(self, request):
        return self.has_view_permission(request)

    def changelist_view(self, request, extra_context=None):
        if self.has_view_permission(request):
            services.expire_overdue()  # the list shows no request as waiting past its time
        return super().changelist_view(request, extra_context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """The request's page (GET); its Approve and Refuse buttons (POST)."""
        try:
            found = ApprovalRequest.objects.filter(pk=int(object_id)).first()
        except (TypeError, ValueError):
            found = None
        if found is None:
            raise Http404("No request with that number.")
        actor = Actor.from_request(request)
        if request.method == "POST":
            # A refusal of the decision (the requester, no permission) is audited and is a 403.
            return _decide(request, actor, found)
        if not self.has_view_permission(request):
            raise PermissionDenied
        kind = registry.kinds().get(found.kind)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Request #{found.pk}: {found.summary}",
            "item": found,
            "kind_label": kind.label if kind else found.kind,
            "permission": kind.permission if kind else "",
            "waiting": found.state == State.WAITING,
            "may_decide": found.state == State.WAITING and kind is not None and services.may_decide(actor, found),
            "is_requester": services.is_requester(actor, found),
            "see_url": _see_url(found),
            "job_url": reverse("provisioning_job", args=[found.result["job_id"]])
            if isinstance(found.result.get("job_id"), int)
            else None,
            "outcome_text": found.result.get("summary") or found.result.get("error") or "",
            "changed_text": _changed_text(found),
            "params_json": json.dumps(found.params, indent=1, sort_keys=True),
            "snapshot_json": json.dumps(found.snapshot, indent=1, sort_keys=True),
            "result_json": json.dumps(found.result, indent=1, sort_keys=True, default=str),
        }
        return TemplateResponse(request, "admin/provisioning/approvalrequest/request.html", context)


def _changed_text(found: ApprovalRequest) -> str:
    changed = found.result.get("changed_since_request")
    if isinstance(changed, str):
        return f"Yes: it {changed}."
    return "Yes: not run (see the decision)." if changed else ""


def _see_url(found: ApprovalRequest) -> str | None:
    """Where the approver sees what the action would act on."""
    return {
        "remove_orphans": reverse("admin:provisioning_authuser_orphans"),
        "provision_all_missing": reverse("admin:provisioning_authuser_provision_all"),
        "sync_all_drifted": reverse("admin:provisioning_authuser_sync_all"),
    }.get(found.kind) or (
        reverse("admin:provisioning_authuser_change", args=[found.target_user_id]) if found.target_user_id else None
    )


def _decide(request, actor: Actor, found: ApprovalRequest):
    back = HttpResponseRedirect(reverse("admin:provisioning_approvalrequest_change", args=[found.pk]))
    decision = request.POST.get("decision")
    reason = request.POST.get("reason", "")
    try:
        if decision == "approve":
            done = services.approve(actor=actor, request_id=found.pk, reason=reason)
        elif decision == "refuse":
            done = services.refuse(actor=actor, request_id=found.pk, reason=reason)
        else:
            messages.error(request, "Choose Approve or Refuse.")
            return back
    except ValueError as exc:  # refusing without a reason
        messages.error(request, str(exc))
        return back
    except services.NotWaiting as exc:  # expired, or someone else decided first
        messages.error(request, str(exc))
        return back
    report_decision(request, done)
    return back


def report_decision(request, done: ApprovalRequest) -> None:
    """The decision's outcome as messages: green only when the action ran."""
    if done.state == State.RAN:
        messages.success(request, f"Approved and ran: {done.result.get('summary') or done.summary}")
    elif done.state == State.FAILED:
        messages.error(request, f"Approved, but the action failed: {done.result.get('error')}")
    elif done.decision_reason and done.result.get("changed_since_request"):
        messages.warning(request, done.decision_reason)
    else:
        messages.info(request, f"Refused: {done.decision_reason}")
    changed = done.result.get("changed_since_request")
    if isinstance(changed, str):
        messages.warning(request, f"The data changed since the request: it {changed}.")


def asked_message(asked: ApprovalRequest) -> str:
    return (
        f"Request #{asked.pk} asked: {asked.summary}. Nothing has run yet: another staff member with the same "
        "permission must approve it."
    )


def ask_for_bulk_run(request, actor: Actor, *, kind: str, users: int):
    """A bulk run ("provision all missing", "sync all drifted") over `users` users: when it
    needs a second staff member (above APPROVAL_THRESHOLD_USERS, approvals on), ask, and
    return the redirect to the request's page (or back, when the reason is missing). None:
    run it as before (below the threshold, or approvals off, or an actor who may not run it
    at all, whose refusal the run itself records)."""
    if not services.bulk_needs_approval(users) or not services.may(actor, registry.kind(kind).permission):
        return None
    try:
        asked = services.request_approval(actor=actor, kind=kind, reason=request.POST.get("reason", ""))
    except ValueError as exc:
        messages.error(
            request,
            f"{exc} This run covers {users:,} users, more than {services.threshold_users():,}: "
            "another staff member must approve it. Nothing was run.",
        )
        return HttpResponseRedirect(request.get_full_path())
    messages.success(request, asked_message(asked))
    return HttpResponseRedirect(reverse("admin:provisioning_approvalrequest_change", args=[asked.pk]))
