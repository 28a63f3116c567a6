"""The app tables (public.users, profiles, wallets) in the admin: browsed, never edited
here; rows are written only by the provisioning services.

Their models declare only the key. A list's other columns are the ones the live table has
(`engine/rows.py` chooses them, leaving secret-looking ones out), read in the page's own
query: the page works on the Eloity migration's six-column `public.users` as on the
thirty-column shape, and a column a project lacks is never asked for.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import BooleanField, Q
from django.db.models.expressions import RawSQL
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from provisioning.engine import rows
from provisioning.ids import clean_typed, parse_uuid
from provisioning.models import AppUser, AuthUser, Profile, Wallet
from provisioning.spec import SPEC
from provisioning.web.admin.base import CappedCountPaginator, ReadOnlyMixin
from provisioning.web.admin.ignored_input import SaysWhatItIgnored
from provisioning.web.templatetags.eloity import app_value


def auth_user_link(field: str):
    """The row's auth user, linked to its page (the short id, the full one copyable)."""

    @admin.display(description="auth user")
    def show(obj):
        user_id = getattr(obj, field)
        if user_id is None:
            return "—"
        url = reverse("admin:provisioning_authuser_change", args=[user_id])
        return format_html('<a href="{}" title="{}"><code>{}</code></a>', url, user_id, str(user_id)[:8])

    show.__name__ = f"{field}_auth_user"
    return show


def live_column(index: int, name: str):
    """A list column reading the live column `name` (annotated as `live_<index>`)."""

    @admin.display(description=name.replace("_", " "))
    def show(obj):
        return app_value(getattr(obj, f"live_{index}", None))

    show.__name__ = f"live_{index}"
    return show


class ReadOnlyAdmin(SaysWhatItIgnored, ReadOnlyMixin, admin.ModelAdmin):
    """An app table keyed by an auth user id: browsed here, written only by services.
    The search box takes an auth user's id (the row of that user) or part of the table's
    email, username or name, where the live table has those columns."""

    #: The column holding the auth user's id (the model's only field).
    user_field = "user_id"
    search_fields = ("pk",)  # the search itself: get_search_results
    search_help_text = "An auth user's id, or part of an email, username or name (where the table has one)."
    show_full_result_count = False
    paginator = CappedCountPaginator
    change_list_template = "admin/provisioning/app_table_list.html"
    list_per_page = 50

    def live_table(self) -> rows.TableColumns:
        """The model's table as the live catalog has it (read once per request)."""
        return rows.table_columns(*self.model._meta.db_table.split('"."'), self.user_field)

    def changelist_view(self, request, extra_context=None):
        table = self.live_table()
        request.eloity_live_table = table
        if not table.exists:
            self.message_user(
                request,
                f"The table {table.qualified_name} does not exist in this database: this list is empty.",
                messages.WARNING,
            )
        spec = next((s for s in SPEC if s.name == table.name), None)
        if spec is not None and (spec.schema, spec.key) != (table.schema, table.key):
            # The spec's table is elsewhere: say which one this list is not.
            self.message_user(
                request,
                f"The spec provisions {spec.qualified_name} (keyed by {spec.key}); this list shows "
                f"{table.qualified_name}. Each user's page shows their {spec.label} in {spec.qualified_name}.",
                messages.WARNING,
            )
        extra_context = {**(extra_context or {}), "live_table": table}
        return super().changelist_view(request, extra_context)

    def _table(self, request) -> rows.TableColumns:
        table = getattr(request, "eloity_live_table", None)
        return table if table is not None else self.live_table()

    def get_list_display(self, request):
        table = self._table(request)
        return [auth_user_link(self.user_field)] + [
            live_column(i, name) for i, name in enumerate(table.list_columns()) if table.exists
        ]

    def get_list_display_links(self, request, list_display):
        # The first live column opens the row's page; the auth user column links elsewhere.
        return list_display[1:2]

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        table = self._table(request)
        if not table.exists or not table.has_key:
            return queryset.none()
        return queryset.annotate(
            **{
                # Names from the live catalog, quoted as identifiers; no input in them.
                f"live_{i}": RawSQL(rows.quoted(table.schema, table.name, column), ())  # noqa: S611
                for i, column in enumerate(table.list_columns())
            }
        )

    def get_search_results(self, request, queryset, search_term):
        term = clean_typed(search_term)
        if not term:
            return queryset, False
        user_id = parse_uuid(term)
        if user_id is not None:
            return queryset.filter(**{self.user_field: user_id}), False
        table = self._table(request)
        searched = table.searched_columns()
        if not searched:
            return queryset.none(), False  # only ids are searchable here, and this is none
        pattern = "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        match = Q()
        for column in searched:
            column_sql = rows.quoted(table.schema, table.name, column)
            match |= Q(RawSQL(f"{column_sql} ILIKE %s", (pattern,), output_field=BooleanField()))  # noqa: S611
        return queryset.filter(match), False

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """A row's own page: every row with this key (a duplicate included), each column the
        live table has but those that look secret, and the auth user's page when there is one."""
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        user_id = parse_uuid(object_id)
        if user_id is None:
            raise Http404("Malformed id.")
        table = self.live_table()
        found = rows.every_row_of(table, [user_id])
        if not found:
            raise Http404(f"No row of {table.qualified_name} for that auth user.")
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"{table.qualified_name}: {found[0].label}",
            "table": table,
            "found": found,
            "user_id": user_id,
            "has_auth_user": AuthUser.objects.filter(pk=user_id).exists(),
        }
        return TemplateResponse(request, "admin/provisioning/app_row.html", context)


@admin.register(AppUser)
class AppUserAdmin(ReadOnlyAdmin):
    user_field = "id"


@admin.register(Profile)
class ProfileAdmin(ReadOnlyAdmin):
    pass


@admin.register(Wallet)
class WalletAdmin(ReadOnlyAdmin):
    pass
