"""Audit pages outside the admin's own: the CSV export of the filtered audit list, and
the load balancer's health check."""

from __future__ import annotations

import csv
import json

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect, StreamingHttpResponse
from django.urls import path, reverse
from django.utils import timezone
from django.views.decorators.http import require_safe

from provisioning import auth_audit
from provisioning.health_endpoint import healthz
from provisioning.models import AuditEvent

#: Rows fetched per round trip while streaming: memory stays flat for a year of events.
EXPORT_CHUNK = 2000
EXPORT_COLUMNS = (
    "id",
    "created_at",
    "actor_username",
    "channel",
    "action",
    "outcome",
    "tables",
    "target_user_ids",
    "rows_created",
    "not_provisioned",
    "detail",
    "client_address",
    "run_id",
)
#: A cell starting with one of these is a formula to a spreadsheet; a typed username on a
#: failed sign-in is attacker-controlled, so such cells get a leading apostrophe.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class _Echo:
    """A file-like object whose write returns the line: csv.writer without a buffer."""

    def write(self, value):
        return value


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        text = json.dumps(value, sort_keys=True, default=str)
    else:
        text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _event_row(event: AuditEvent) -> list[str]:
    return [
        _cell(event.pk),
        _cell(event.created_at),
        _cell(event.actor_username),
        _cell(event.channel),
        _cell(event.action),
        _cell(event.outcome),
        " ".join(event.tables or []),
        " ".join(str(i) for i in event.target_user_ids or []),
        _cell(event.rows_created),
        _cell(event.not_provisioned),
        _cell(event.detail),
        _cell(event.client_address),
        _cell(event.run_id),
    ]


@require_safe
def export_audit_csv(request):
    """The audit list as the changelist shows it (same filters, search and order, every
    page), streamed as CSV. The export itself is audited before the first row leaves."""
    model_admin = admin.site._registry[AuditEvent]
    if not model_admin.has_view_permission(request):
        raise PermissionDenied("You do not have permission to view the audit log.")
    try:
        changelist = model_admin.get_changelist_instance(request)
    except IncorrectLookupParameters:
        # The changelist explains unknown or malformed filters itself.
        return HttpResponseRedirect(reverse("admin:provisioning_auditevent_changelist") + "?e=1")
    events = changelist.queryset
    auth_audit.record_access(
        request=request,
        action=AuditEvent.Action.EXPORT_AUDIT,
        outcome=AuditEvent.Outcome.SUCCEEDED,
        user=request.user,
        detail={"filters": request.GET.urlencode()[:2000]},
    )
    writer = csv.writer(_Echo())

    def lines():
        yield writer.writerow(EXPORT_COLUMNS)
        for event in events.iterator(chunk_size=EXPORT_CHUNK):
            yield writer.writerow(_event_row(event))

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="audit-log-{stamp}.csv"'
    response["Cache-Control"] = "no-store"
    return response


urlpatterns = [
    path("admin/tools/audit/export.csv", admin.site.admin_view(export_audit_csv), name="audit_export_csv"),
    path("healthz", healthz, name="healthz"),
]
