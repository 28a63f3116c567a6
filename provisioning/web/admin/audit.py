"""The audit log in the admin: read-only for everyone, superusers included.

Support staff review it by action, outcome, channel, actor and date; search it by the
user an event touched (auth user id or email) or by a run id; open an event to see the
rows it created and the users it could not provision; export what they filtered as CSV
(`AuditEventAdmin.export_view`, the cells from audit/export.py).
"""

from __future__ import annotations

import json
import logging
from datetime import datetime

from django.contrib import admin
from django.contrib.admin.views.main import ERROR_FLAG, ChangeList
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect, StreamingHttpResponse
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.views.decorators.http import require_safe

from provisioning.audit import failures
from provisioning.audit.access import record_access
from provisioning.audit.export import EXPORT_CHUNK, csv_lines, single_user
from provisioning.audit.search import search_audit_events
from provisioning.engine import selectors
from provisioning.errors import first_line
from provisioning.hooks import deliveries
from provisioning.ids import parse_uuid
from provisioning.models import AuditEvent
from provisioning.spec import qualified_name
from provisioning.web.admin.base import CappedCountPaginator, ReadOnlyMixin, time_field
from provisioning.web.admin.ignored_input import UNUSABLE, SaysWhatItIgnored
from provisioning.web.templatetags.eloity import people_html, person_html, person_in

logger = logging.getLogger(__name__)

#: How many linked users a detail page lists per table before "… and N more": a batch
#: holds up to PROVISIONING_BATCH_SIZE users, and the page must stay readable.
LINKS_SHOWN = 200
#: How many distinct actors the actor filter offers.
ACTORS_OFFERED = 100


class ActorFilter(admin.SimpleListFilter):
    """Who acted: staff usernames and `os:<name>` for the command line. Failed sign-ins are
    left out of the choices: what they record is whatever someone typed."""

    title = "actor"
    parameter_name = "actor"

    def lookups(self, request, model_admin):
        names = (
            AuditEvent.objects.exclude(action=AuditEvent.Action.LOGIN_FAILED)
            .order_by("actor_username")
            .values_list("actor_username", flat=True)
            .distinct()[:ACTORS_OFFERED]
        )
        return [(name, name) for name in names]

    def queryset(self, request, queryset):
        value = self.value()
        if value is None:
            return queryset
        return queryset.filter(actor_username=str(value).replace("\x00", "")[:150])


def _would_create(obj: AuditEvent) -> dict[str, int] | None:
    """A dry run's rows per table, as it counted them (`rows_created` holds a sample only)."""
    counts = (obj.detail or {}).get("would_create") if obj.outcome == AuditEvent.Outcome.DRY_RUN else None
    if not isinstance(counts, dict):
        return None
    return {str(t): n for t, n in counts.items() if isinstance(n, int)}


def _users_counted(obj: AuditEvent) -> int | None:
    """How many users a dry run covered (its `target_user_ids` are a sample)."""
    detail = obj.detail or {}
    for key in ("users_processed", "users_missing_any"):
        if isinstance(detail.get(key), int):
            return detail[key]
    return None


def _sync_changes(obj: AuditEvent) -> list[tuple[str, str, object, object]]:
    """A sync's changes as (user id, column, old, new), from `detail.changes`
    ({"public.users.email": [[user id, old, new], ...]})."""
    changes = (obj.detail or {}).get("changes")
    if not isinstance(changes, dict):
        return []
    return [
        (str(entry[0]), str(column), entry[1], entry[2])
        for column, entries in changes.items()
        if isinstance(entries, list)
        for entry in entries
        if isinstance(entry, list) and len(entry) == 3
    ]


def _links(user_ids: list) -> str:
    """The event's users by name (email or phone), linked; a long list collapsed."""
    shown = user_ids[:LINKS_SHOWN]
    return people_html(shown, selectors.person_labels(shown), more=len(user_ids) - len(shown))


class AuditChangeList(ChangeList):
    """The audit list: the person of each single-user event on the page is named (email,
    else phone) with one query for the page."""

    def get_results(self, request):
        super().get_results(request)
        labels = selectors.person_labels([i for i in map(single_user, self.result_list) if i])
        for event in self.result_list:
            event.person_label = labels.get(single_user(event) or "")


@admin.register(AuditEvent)
class AuditEventAdmin(SaysWhatItIgnored, ReadOnlyMixin, admin.ModelAdmin):
    """Read-only for everyone, superusers included: the audit log is append-only."""

    list_display = (
        time_field("created_at", "when"),
        "actor_username",
        "channel",
        "action",
        "outcome",
        "rows_created_count",
        "targets",
    )
    list_filter = ("action", "outcome", "channel", ActorFilter, "created_at")
    date_hierarchy = "created_at"
    search_fields = ("actor_username",)  # search itself is `search_audit_events`
    search_help_text = "A user's id, part of a user's email (any case), a run id, or part of an actor's name."
    ordering = ("-created_at", "-id")
    show_full_result_count = False
    paginator = CappedCountPaginator
    list_per_page = 100
    change_list_template = "admin/provisioning/auditevent/change_list.html"
    when = staticmethod(time_field("created_at", "when"))
    readonly_fields = (
        "when",
        "actor_username",
        "actor_account",
        "channel",
        "client_address",
        "run_id",
        "action",
        "outcome",
        "tables",
        "target_users",
        "rows_created_by_table",
        "users_not_provisioned",
        "detail_json",
        "failures_by_reason",
        "values_changed",
        "users_blocked",
    )
    fieldsets = (
        (None, {"fields": ("when", "actor_username", "actor_account", "channel", "client_address", "run_id")}),
        ("What", {"fields": ("action", "outcome", "tables", "target_users")}),
        ("Result", {"fields": ("rows_created_by_table", "users_not_provisioned", "detail_json")}),
    )

    def get_fieldsets(self, request, obj=None):
        """The failures by reason come first, when there are any; a sync shows its values
        changed, not rows created."""
        if obj is None:
            return self.fieldsets
        head, what, _ = self.fieldsets
        sets = [head]
        if self.failure_groups(obj):
            title = "Blocked, by reason" if obj.action == AuditEvent.Action.SYNC_VALUES else None
            sets.append((title or "Could not be provisioned, by reason", {"fields": ("failures_by_reason",)}))
        sets.append(what)
        if obj.action == AuditEvent.Action.SYNC_VALUES:
            sets.append(("Result", {"fields": ("values_changed", "users_blocked")}))
            sets.append(("Detail", {"fields": ("detail_json",), "classes": ("collapse",)}))
        else:
            sets.append(("Result", {"fields": ("rows_created_by_table", "users_not_provisioned", "detail_json")}))
        return sets

    def get_object(self, request, object_id, from_field=None):
        if not (str(object_id).isascii() and str(object_id).isdigit()) or len(str(object_id)) > 18:
            raise Http404("Malformed id.")
        return super().get_object(request, object_id, from_field)

    def get_search_results(self, request, queryset, search_term):
        return search_audit_events(queryset, search_term), False

    def changelist_view(self, request, extra_context=None):
        query = request.GET.copy()
        for page_only in ("p", ERROR_FLAG):
            query.pop(page_only, None)
        export_url = reverse("admin:provisioning_auditevent_export") + (f"?{query.urlencode()}" if query else "")
        return super().changelist_view(request, {**(extra_context or {}), "export_url": export_url})

    # --- CSV export -------------------------------------------------------------------
    def get_urls(self):
        export = path(
            "export.csv",
            self.admin_site.admin_view(require_safe(self.export_view)),
            name="provisioning_auditevent_export",
        )
        return [export, *super().get_urls()]

    def export_view(self, request):
        """The list as the changelist shows it (same filters, search and order, every page),
        streamed as CSV. The export itself is audited before the first row leaves."""
        if not self.has_view_permission(request):
            raise PermissionDenied("You do not have permission to view the audit log.")
        try:
            events = self.changelist_as_given(request).queryset
            # Ask the database for one row before anything is sent or audited: a filter
            # value it cannot take (`?client_address=notanip`, a broken regex) fails here,
            # not halfway through a streamed response. (Not the stream's own cursor: a
            # response nobody reads must not leave a server-side cursor open.)
            list(events[:1])
        except UNUSABLE as exc:
            # The list names what it cannot use and shows the rest: back to it, same address.
            logger.warning("unusable audit export filter: %s", first_line(exc))
            return self._back_to_the_list(request)
        record_access(
            request=request,
            action=AuditEvent.Action.EXPORT_AUDIT,
            outcome=AuditEvent.Outcome.SUCCEEDED,
            user=request.user,
            detail={"filters": request.GET.urlencode()[:2000]},
        )
        response = StreamingHttpResponse(
            csv_lines(events.iterator(chunk_size=EXPORT_CHUNK), people=selectors.person_labels),
            content_type="text/csv; charset=utf-8",
        )
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        response["Content-Disposition"] = f'attachment; filename="audit-log-{stamp}.csv"'
        response["Cache-Control"] = "no-store"
        return response

    def _back_to_the_list(self, request) -> HttpResponseRedirect:
        query = request.GET.urlencode()
        return HttpResponseRedirect(
            reverse("admin:provisioning_auditevent_changelist") + (f"?{query}" if query else "")
        )

    # --- list columns -----------------------------------------------------------------
    @admin.display(description="rows created")
    def rows_created_count(self, obj):
        # A dry run wrote nothing: what it would write is not a count of rows created.
        if obj.outcome == AuditEvent.Outcome.DRY_RUN:
            n = obj.rows_created_count
            return format_html('<span class="quiet">would create {} row{}</span>', n, "" if n == 1 else "s")
        if obj.action == AuditEvent.Action.SYNC_VALUES:
            n = len(_sync_changes(obj))
            return format_html('<span class="quiet">{} value{} synced</span>', n, "" if n == 1 else "s")
        return obj.rows_created_count

    def get_changelist(self, request, **kwargs):
        return AuditChangeList

    @admin.display(description="users")
    def targets(self, obj):
        """The person, for a single-user event; otherwise how many users (a dry run: how
        many it counted)."""
        if obj.outcome == AuditEvent.Outcome.DRY_RUN and (n := _users_counted(obj)) is not None:
            return n
        user_id = single_user(obj)
        if user_id is None:
            return len(obj.target_user_ids or [])
        return person_html(user_id, getattr(obj, "person_label", None))

    # --- detail page ------------------------------------------------------------------
    @admin.display(description="users targeted")
    def target_users(self, obj):
        ids = obj.target_user_ids or []
        if not ids:
            return "—"
        return _links(ids)

    @admin.display(description="rows created")
    def rows_created_by_table(self, obj):
        created = obj.rows_created or {}
        would = _would_create(obj)
        if would is not None:
            return self._would_create_html(obj, would, created)
        if not any(created.values()):
            return "None."
        dry_run = obj.outcome == AuditEvent.Outcome.DRY_RUN
        rows = format_html(
            "<ul>{}</ul>",
            format_html_join(
                "",
                "<li><strong>{}</strong>: {} row(s) for {}</li>",
                ((qualified_name(table), len(ids), _links(ids)) for table, ids in created.items() if ids),
            ),
        )
        if dry_run:
            return format_html("<p><strong>A dry run: nothing was written.</strong> It would create:</p>{}", rows)
        return rows

    def _would_create_html(self, obj, would: dict[str, int], sample: dict) -> str:
        """A dry run's counts per table (a sample of its users linked, where it kept one)."""
        total = sum(would.values())
        users = _users_counted(obj)
        who = f" for {users} user{'' if users == 1 else 's'}" if users is not None else ""
        items = format_html_join(
            "",
            "<li><strong>{}</strong>: {}{}</li>",
            (
                (
                    qualified_name(table),
                    n,
                    format_html(" — for example {}", _links(sample[table])) if sample.get(table) else "",
                )
                for table, n in sorted(would.items(), key=lambda item: _table_order(obj, item[0]))
            ),
        )
        return format_html(
            "<p><strong>A dry run: nothing was written.</strong> It would create {} row{}{}:</p><ul>{}</ul>",
            total,
            "" if total == 1 else "s",
            who,
            items,
        )

    def failure_groups(self, obj) -> list:
        """The event's failures by table and reason: a dry run counted them all (its
        `not_provisioned` is a sample); a batch lists every one of its own."""
        kept = (obj.detail or {}).get("failures_by_reason")
        if isinstance(kept, list):
            return failures.groups_of_dicts(kept)
        return failures.groups_of_items(item for item in (obj.not_provisioned or []) if isinstance(item, dict))

    @admin.display(description="by reason")
    def failures_by_reason(self, obj):
        groups = self.failure_groups(obj)
        people = selectors.person_labels([u for g in groups for u in g.user_ids])
        return render_to_string("admin/provisioning/_failure_groups.html", {"failure_groups": groups, "people": people})

    @admin.display(description="values changed")
    def values_changed(self, obj):
        changes = _sync_changes(obj)
        if not changes:
            return "None."
        shown = changes[:LINKS_SHOWN]
        labels = selectors.person_labels([user_id for user_id, *_ in shown])
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    person_in(user_id, labels) if parse_uuid(user_id) else user_id,
                    column,
                    _value(old),
                    _value(new),
                )
                for user_id, column, old, new in shown
            ),
        )
        more = format_html("<p>… and {} more (see the CSV export)</p>", len(changes) - LINKS_SHOWN)
        return format_html(
            '<table id="values-changed"><thead><tr><th scope="col">user</th><th scope="col">column</th>'
            '<th scope="col">old</th><th scope="col">new</th></tr></thead><tbody>{}</tbody></table>{}',
            rows,
            more if len(changes) > LINKS_SHOWN else "",
        )

    @admin.display(description="blocked")
    def users_blocked(self, obj):
        return self.users_not_provisioned(obj)

    @admin.display(description="not provisioned")
    def users_not_provisioned(self, obj):
        items = [item for item in (obj.not_provisioned or []) if isinstance(item, dict)]
        if not items:
            return "None."
        labels = selectors.person_labels([item.get("user_id") for item in items[:LINKS_SHOWN]])
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    person_in(item["user_id"], labels) if parse_uuid(item.get("user_id")) else item.get("user_id", ""),
                    "every table" if item.get("table") == "*" else qualified_name(str(item.get("table", ""))),
                    item.get("reason", ""),
                )
                for item in items[:LINKS_SHOWN]
            ),
        )
        more = format_html("<p>… and {} more (see the CSV export)</p>", len(items) - LINKS_SHOWN)
        return format_html(
            "<table><thead><tr><th>user</th><th>table</th><th>reason</th></tr></thead><tbody>{}</tbody></table>{}",
            rows,
            more if len(items) > LINKS_SHOWN else "",
        )

    @admin.display(description="detail")
    def detail_json(self, obj):
        if not obj.detail:
            return "—"
        shown = format_html("<pre>{}</pre>", json.dumps(obj.detail, indent=2, sort_keys=True, default=str))
        return format_html("{}{}", _refusals_counted(obj), shown)

    @admin.display(description="staff account")
    def actor_account(self, obj):
        """The acting staff account; one deleted since is said so (its name stays in
        `actor_username`, its deletion is an event of its own)."""
        if obj.actor_id is None:
            return "—"
        account = get_user_model().objects.filter(pk=obj.actor_id).first()
        if account is None:
            return format_html("deleted (was account id {}: see its “Staff account deleted” event)", obj.actor_id)
        return format_html("{} (id {})", account.get_username(), account.pk)


def _refusals_counted(event: AuditEvent) -> str:
    """For a refused webhook delivery: the refusals every server process counted from its
    source in its minute (the event is written at the first of them)."""
    minute = (event.detail or {}).get("minute") if event.action == AuditEvent.Action.SIGNUP_WEBHOOK else None
    if event.outcome != AuditEvent.Outcome.DENIED or not isinstance(minute, str):
        return ""
    try:
        counted = deliveries.refusals_counted(source=event.client_address, minute=datetime.fromisoformat(minute))
    except ValueError:
        return ""
    if counted is None:
        return ""
    return format_html(
        "<p><strong>{} refused deliveries</strong> from {} in that minute, counted by every server process.</p>",
        counted,
        event.client_address or "an unknown address",
    )


def _value(value) -> str:
    """An old or new value as a cell: NULL said as such, an empty string as empty quotes."""
    if value is None:
        return format_html('<span class="quiet">NULL</span>')
    if value == "":
        return format_html('<span class="quiet">""</span>')
    return str(value)


def _table_order(obj: AuditEvent, table: str) -> tuple[int, str]:
    """The event's tables in the order it names them (parents first); others after."""
    tables = list(obj.tables or [])
    return (tables.index(table) if table in tables else len(tables), table)
