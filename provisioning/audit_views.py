"""Audit pages outside the admin's own: the CSV export of the filtered audit list, and
the load balancer's health check."""

from __future__ import annotations

import csv
import json
import logging
import re

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ERROR_FLAG
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import DataError
from django.http import HttpResponseRedirect, StreamingHttpResponse
from django.urls import path, reverse
from django.utils import timezone
from django.views.decorators.http import require_safe

from provisioning import auth_audit
from provisioning.errors import first_line
from provisioning.health_endpoint import healthz
from provisioning.models import AuditEvent

logger = logging.getLogger(__name__)

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
#: A cell starting with one of these is a formula to a spreadsheet (OWASP's list).
FORMULA_CHARACTERS = "=+-@\t\r"
#: Where a spreadsheet may start a cell inside one of our values: the value's start, after
#: a comma or a semicolon (a reader set to ';', common in Europe, ignores the quotes the
#: comma-separated file puts around the value), or after a line break, when followed
#: (past blanks and quotes) by a formula character. A typed username on a failed sign-in
#: is attacker-controlled, so every such place gets an apostrophe.
_FORMULA_CELL = re.compile(r'(^|[,;\n\r])(?=[\s"]*[=+\-@\t\r])')
#: A plain number (a negative id, an amount) stays as it is: it is not a formula.
_PLAIN_NUMBER = re.compile(r"-?\d+(\.\d+)?\Z")


def neutralise_formulas(text: str) -> str:
    """`text` with an apostrophe before every place a spreadsheet could read a formula,
    whether it opens the file with commas or with semicolons as separators."""
    if _PLAIN_NUMBER.match(text):
        return text
    return _FORMULA_CELL.sub(lambda match: match.group(1) + "'", text)


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
    return neutralise_formulas(text)


def _event_row(event: AuditEvent) -> list[str]:
    return [
        _cell(event.pk),
        _cell(event.created_at),
        _cell(event.actor_username),
        _cell(event.channel),
        _cell(event.action),
        _cell(event.outcome),
        _cell(" ".join(event.tables or [])),
        _cell(" ".join(str(i) for i in event.target_user_ids or [])),
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
        events = changelist.queryset
        # Ask the database for one row before anything is sent or audited: a filter value
        # it cannot take (`?client_address=notanip`, a broken regex) fails here, not
        # halfway through a streamed response. (Not the stream's own cursor: a response
        # nobody reads must not leave a server-side cursor open.)
        list(events[:1])
    except IncorrectLookupParameters:
        # The changelist explains unknown or malformed filters itself.
        return _back_to_the_list()
    except (ValueError, OverflowError, DataError, ValidationError) as exc:
        # What the list answers for the same filters (see middleware): back to it, ?e=1.
        logger.warning("unusable audit export filter: %s", first_line(exc))
        return _back_to_the_list()
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


def _back_to_the_list() -> HttpResponseRedirect:
    return HttpResponseRedirect(reverse("admin:provisioning_auditevent_changelist") + f"?{ERROR_FLAG}=1")


urlpatterns = [
    path("admin/tools/audit/export.csv", admin.site.admin_view(export_audit_csv), name="audit_export_csv"),
    path("healthz", healthz, name="healthz"),
]
