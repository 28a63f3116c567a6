"""The audit log in the admin: read-only for everyone, superusers included.

Support staff review it by action, outcome, channel, actor and date; search it by the
user an event touched (auth user id or email) or by a run id; open an event to see the
rows it created and the users it could not provision; export what they filtered as CSV
(`audit_views.export_audit_csv`).
"""

from __future__ import annotations

import json

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import Http404
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from provisioning.admin import CappedCountPaginator, ReadOnlyMixin
from provisioning.models import AuditEvent, AuthUser
from provisioning.selectors import parse_uuid

#: How many linked users a detail page lists per table before "… and N more": a batch
#: holds up to PROVISIONING_BATCH_SIZE users, and the page must stay readable.
LINKS_SHOWN = 200
#: How many distinct actors the actor filter offers.
ACTORS_OFFERED = 100
#: How many auth users one email search may match (emails are unique per sign-up kind).
EMAIL_MATCHES = 100


def clean_search_term(term: str) -> str:
    """The search box's text as something PostgreSQL accepts: no NUL bytes, trimmed, and
    cut to an email's maximum length (no id or email is longer)."""
    return str(term or "").replace("\x00", "").strip()[:320]


def search_audit_events(queryset: QuerySet, term: str) -> QuerySet:
    """Events matching the search box. Reads only.

    A UUID matches events that targeted that auth user, or the run with that id; any other
    text is an email (case-insensitive, exact) whose auth users' events are returned, or
    part of an actor's name. Odd input (NUL bytes, 10,000 characters, `%`, `_`) narrows
    the list, never fails: values are bound parameters and LIKE wildcards are escaped.
    """
    term = clean_search_term(term)
    if not term:
        return queryset
    as_uuid = parse_uuid(term)
    if as_uuid is not None:
        return queryset.filter(Q(target_user_ids__contains=[as_uuid]) | Q(run_id=as_uuid))
    user_ids = list(AuthUser.objects.filter(email__iexact=term).values_list("id", flat=True)[:EMAIL_MATCHES])
    match = Q(actor_username__icontains=term)
    if user_ids:
        match |= Q(target_user_ids__overlap=user_ids)
    return queryset.filter(match)


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


def _user_link(user_id) -> str:
    return format_html(
        '<a href="{}"><code>{}</code></a>', reverse("admin:provisioning_authuser_change", args=[user_id]), user_id
    )


def _links(user_ids: list) -> str:
    shown = format_html_join(", ", "{}", ((_user_link(i),) for i in user_ids[:LINKS_SHOWN]))
    if len(user_ids) > LINKS_SHOWN:
        return format_html("{} … and {} more (see the CSV export)", shown, len(user_ids) - LINKS_SHOWN)
    return shown


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Read-only for everyone, superusers included: the audit log is append-only."""

    list_display = ("created_at", "actor_username", "channel", "action", "outcome", "rows_created_count", "targets")
    list_filter = ("action", "outcome", "channel", ActorFilter, "created_at")
    date_hierarchy = "created_at"
    search_fields = ("actor_username",)  # search itself is `search_audit_events`
    search_help_text = "A user's id or email (exact, any case), a run id, or part of an actor's name."
    ordering = ("-created_at", "-id")
    show_full_result_count = False
    paginator = CappedCountPaginator
    list_per_page = 100
    change_list_template = "admin/provisioning/auditevent/change_list.html"
    readonly_fields = (
        "created_at",
        "actor_username",
        "actor",
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
    )
    fieldsets = (
        (None, {"fields": ("created_at", "actor_username", "actor", "channel", "client_address", "run_id")}),
        ("What", {"fields": ("action", "outcome", "tables", "target_users")}),
        ("Result", {"fields": ("rows_created_by_table", "users_not_provisioned", "detail_json")}),
    )

    def get_object(self, request, object_id, from_field=None):
        if not str(object_id).isdigit() or len(str(object_id)) > 18:
            raise Http404("Malformed id.")
        return super().get_object(request, object_id, from_field)

    def get_search_results(self, request, queryset, search_term):
        return search_audit_events(queryset, search_term), False

    def changelist_view(self, request, extra_context=None):
        query = request.GET.copy()
        for page_only in ("p", "e"):
            query.pop(page_only, None)
        export_url = reverse("audit_export_csv") + (f"?{query.urlencode()}" if query else "")
        return super().changelist_view(request, {**(extra_context or {}), "export_url": export_url})

    # --- list columns -----------------------------------------------------------------
    @admin.display(description="rows created")
    def rows_created_count(self, obj):
        return obj.rows_created_count

    @admin.display(description="users")
    def targets(self, obj):
        return len(obj.target_user_ids or [])

    # --- detail page ------------------------------------------------------------------
    @admin.display(description="users targeted")
    def target_users(self, obj):
        ids = obj.target_user_ids or []
        if not ids:
            return "—"
        return format_html("{} user(s): {}", len(ids), _links(ids))

    @admin.display(description="rows created")
    def rows_created_by_table(self, obj):
        created = obj.rows_created or {}
        if not any(created.values()):
            return "None."
        return format_html(
            "<ul>{}</ul>",
            format_html_join(
                "",
                "<li><strong>public.{}</strong>: {} row(s) for {}</li>",
                ((table, len(ids), _links(ids)) for table, ids in created.items() if ids),
            ),
        )

    @admin.display(description="not provisioned")
    def users_not_provisioned(self, obj):
        items = [item for item in (obj.not_provisioned or []) if isinstance(item, dict)]
        if not items:
            return "None."
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    _user_link(item["user_id"]) if parse_uuid(item.get("user_id")) else item.get("user_id", ""),
                    "every table" if item.get("table") == "*" else f"public.{item.get('table', '')}",
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
        return format_html("<pre>{}</pre>", json.dumps(obj.detail, indent=2, sort_keys=True, default=str))
