"""Auth users in the admin: the status list, the detail page and the provisioning actions
(one user, selected users, all missing). Thin: parsing, permissions and rendering here;
reads in engine.selectors, writes in engine.services."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.views.main import PAGE_VAR, ChangeList
from django.core.exceptions import PermissionDenied
from django.db.models.expressions import RawSQL
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

import provisioning.web.admin.account_actions as account_action_views
import provisioning.web.admin.approvals as approval_views
import provisioning.web.admin.drift as drift_views
from provisioning import diagnostics
from provisioning.account import filters as account_filters
from provisioning.account.overview import account as account_overview
from provisioning.actors import Actor, may_provision
from provisioning.approvals import kinds as approval_kinds
from provisioning.approvals import services as approvals
from provisioning.audit import failures
from provisioning.audit.recording import record_denied
from provisioning.drift import selectors as drift_selectors
from provisioning.drift import services as drift_services
from provisioning.drift.columns import by_table, copied_columns
from provisioning.engine import confirmation, rows, selectors, services
from provisioning.engine.plans import SpecCycle
from provisioning.ids import parse_uuid
from provisioning.models import AuditEvent, AuthUser, ProvisioningJob
from provisioning.spec import SPEC, TABLE_NAMES, qualified_name, table_spec
from provisioning.web.admin.base import (
    COUNT_CAP,
    MAX_SELECTED,
    MIN_COUNT_CAP,
    CappedCountPaginator,
    ReadOnlyMixin,
    time_field,
    yes_no_field,
)
from provisioning.web.admin.ignored_input import SaysWhatItIgnored, ignored_note
from provisioning.web.templatetags.eloity import local_time, status_icon_html

#: Above this many auth users (planner estimate), the list is ordered by the indexed id and
#: paged by keyset ("the next 50 after this id"): auth.users has no index on created_at,
#: Supabase does not let customers add one, and an OFFSET walks every row before the page.
LARGE_TABLE = 100_000
#: The keyset cursor in the list's address: the page starts after this auth user id.
AFTER_VAR = "after"
#: The status filters read from the provisioning ledger (engine/ledger.py) where there is one.
LEDGER_LISTS = ("missing_any", "complete", "cannot")
#: `?recheck=1` on the "Values differ from auth" list: compare with auth now.
RECHECK_VAR = "recheck"


class ProvisioningStatusFilter(admin.SimpleListFilter):
    title = "provisioning"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        # Where provisioning waits for confirmation, unconfirmed users without rows are
        # expected: they get a choice of their own, apart from the confirmed ones.
        self.gate = confirmation.gate()
        awaiting = (
            [
                ("missing_confirmed", "Missing anything, confirmed"),
                ("awaiting_confirmation", "Missing anything, awaiting confirmation (expected)"),
            ]
            if self.gate
            else []
        )
        return [
            ("missing_any", "Missing anything"),
            *awaiting,
            *((f"missing_{spec.name}", f"Missing {spec.label}") for spec in SPEC),
            ("complete", "Fully provisioned"),
            ("cannot", "Cannot be provisioned"),
            ("drifted", "Values differ from auth"),
        ]

    def queryset(self, request, queryset):
        value = self.value()
        # On a keyset page the list holds only users after the cursor (StatusChangeList),
        # so the app tables need reading only from there on too.
        after = getattr(request, "eloity_list_after", None)
        if value in LEDGER_LISTS and request.GET.get(self.parameter_name) == value:
            state = selectors.ledger_state()
            if state is not None:  # the provisioning ledger: a page never scans everyone
                request.eloity_ledger_state = state
                return queryset.filter(selectors.ledger_list_q(value, state, after))
        if value == "missing_any":
            return queryset.filter(selectors.missing_any_q(after))
        if value in ("missing_confirmed", "awaiting_confirmation") and self.gate:
            awaiting = self.gate.awaiting_q()
            return queryset.filter(
                selectors.missing_any_q(after), awaiting if value != "missing_confirmed" else ~awaiting
            )
        if value == "complete":
            return queryset.filter(selectors.complete_q(after))
        if value == "cannot":
            return queryset.filter(selectors.cannot_be_provisioned_q())
        if value == "drifted":
            grouped = by_table(copied_columns())
            # Only the list filtered on it reads (and may refresh) the scan: not the other
            # filters' facet counts (`?_facets=1` counts every choice).
            if request.GET.get(self.parameter_name) == "drifted":
                request.eloity_drift_scan = drift_services.scan_drift(
                    max_age=drift_services.DRIFT_SCAN_MAX_AGE, grouped=grouped
                )
            scanned = getattr(request, "eloity_drift_scan", None) is not None
            return queryset.filter(drift_selectors.drifted_q(after, scanned=scanned, grouped=grouped))
        if value and value.startswith("missing_") and value.removeprefix("missing_") in TABLE_NAMES:
            return queryset.filter(selectors.missing_q(value.removeprefix("missing_"), after))
        if value is not None:
            _unknown_filter_value(request, self, value)
        return queryset


class AccountKindFilter(admin.SimpleListFilter):
    """Soft-deleted and anonymous sign-ups are hidden unless asked for."""

    title = "sign-ups shown"
    parameter_name = "kind"

    def lookups(self, request, model_admin):
        return [
            ("deleted", "Soft-deleted only"),
            ("anonymous", "Anonymous only"),
            ("everyone", "Everyone (incl. deleted and anonymous)"),
        ]

    def choices(self, changelist):
        for choice in super().choices(changelist):
            if choice["display"] == "All":
                choice["display"] = "Live sign-ups"
            yield choice

    def queryset(self, request, queryset):
        value = self.value()
        if value == "deleted":
            return queryset.filter(deleted_at__isnull=False)
        if value == "anonymous":
            return queryset.filter(is_anonymous=True)
        if value == "everyone":
            return queryset
        if value is not None:
            _unknown_filter_value(request, self, value)
        return selectors.population(queryset)


class AccountStateFilter(admin.SimpleListFilter):
    """What Auth knows of the sign-up: confirmed, banned, MFA, sign-ins, SSO."""

    title = "account"
    parameter_name = "account"

    def lookups(self, request, model_admin):
        return list(account_filters.STATE_CHOICES)

    def queryset(self, request, queryset):
        value = self.value()
        if value is None:
            return queryset
        if value not in {key for key, _ in account_filters.STATE_CHOICES}:
            _unknown_filter_value(request, self, value)
            return queryset
        condition = account_filters.state_q(value)
        if condition is None:
            label = dict(account_filters.STATE_CHOICES)[value]
            messages.warning(request, f"“{label}”: not available on this project's Auth version; it was ignored.")
            return queryset
        return queryset.filter(condition)


class ProviderFilter(admin.SimpleListFilter):
    """How the sign-up signs in (auth.users.raw_app_meta_data's providers)."""

    title = "sign-in provider"
    parameter_name = "provider"

    def lookups(self, request, model_admin):
        return list(account_filters.PROVIDER_CHOICES)

    def queryset(self, request, queryset):
        value = self.value()
        if value is None:
            return queryset
        if value not in {key for key, _ in account_filters.PROVIDER_CHOICES}:
            _unknown_filter_value(request, self, value)
            return queryset
        return queryset.filter(account_filters.provider_q(value))


class JobFilter(admin.SimpleListFilter):
    """`?job=<id>`: exactly the users a provisioning job could not provision, read from the
    `not_provisioned` lists of its batches' audit events (its run id). The job page links
    here from its "could not be provisioned" count."""

    title = "provisioning job"
    parameter_name = "job"

    def lookups(self, request, model_admin):
        # Only the job asked for is a choice (the filter shows only then); a filter with no
        # choice would not be applied at all.
        value = self.value()
        if value is None:
            return []
        job = self._job()
        return [(value, f"Could not be provisioned by job {job.pk}" if job else f"No job {value[:40]}")]

    def _job(self):
        value = self.value()
        if value is None or not (value.isascii() and value.isdigit()) or len(value) > 18:
            return None
        return ProvisioningJob.objects.filter(pk=int(value)).first()

    def queryset(self, request, queryset):
        if self.value() is None:
            return queryset
        job = self._job()
        if job is None:
            messages.warning(request, f"There is no job {self.value()[:40]}: no user is shown.")
            return queryset.none()
        return queryset.filter(pk__in=RawSQL(*failures.not_provisioned_of_run(job.run_id)))  # noqa: S611 - composed, values as parameters


class StatusChangeList(ChangeList):
    """The auth user list. Its ✓/✗ cells are read for the page's rows only, after the page
    is cut (`selectors.annotate_statuses`), one query for the page.

    On a large table (`AuthUserAdmin.uses_keyset`) it pages by keyset: ordered by id, each
    page is "the next 50 after this id" (`?after=`), so page 150 costs what page 1 does,
    where an OFFSET walks and checks every user before it. The count stops at
    MIN_COUNT_CAP users past the cursor; `p` only numbers the rows shown.
    """

    @property
    def keyset(self) -> bool:
        return bool(getattr(self._request, "eloity_list_keyset", False))

    @property
    def after(self):
        return getattr(self._request, "eloity_list_after", None)

    def __init__(self, request, *args, **kwargs):
        self._request = request
        super().__init__(request, *args, **kwargs)

    def get_filters_params(self, params=None):
        lookup_params = super().get_filters_params(params)
        lookup_params.pop(AFTER_VAR, None)
        lookup_params.pop(RECHECK_VAR, None)
        return lookup_params

    def get_query_string(self, new_params=None, remove=None):
        # A cursor belongs to one list: a filter, a search or a sort starts it over.
        new_params = {AFTER_VAR: None, RECHECK_VAR: None, **(new_params or {})}
        return super().get_query_string(new_params, remove)

    @property
    def drift_scan(self):
        """The drift scan the "Values differ from auth" filter listed from, if it did."""
        return getattr(self._request, "eloity_drift_scan", None)

    @property
    def ledger_state(self):
        """The provisioning ledger the list was filtered from, if it was."""
        return getattr(self._request, "eloity_ledger_state", None)

    @property
    def ledger_changed(self) -> int:
        """Users on this page whose rows changed since the ledger's last catch-up (shown
        as they are now): listed as missing, they have every row, or the reverse."""
        if self.ledger_state is None:
            return 0
        complete = self._request.GET.get(ProvisioningStatusFilter.parameter_name) == "complete"
        fields = [selectors.status_field(t) for t in TABLE_NAMES]
        return sum(1 for user in self.result_list if all(getattr(user, f, True) for f in fields) != complete)

    @property
    def recheck_url(self) -> str:
        return self.get_query_string({RECHECK_VAR: 1})

    def get_ordering(self, request, queryset):
        if self.keyset:
            return ["pk"]
        return super().get_ordering(request, queryset)

    def get_queryset(self, request, exclude_parameters=None):
        queryset = super().get_queryset(request, exclude_parameters)
        # The providers column, from auth.users itself: no join, no query per row.
        queryset = queryset.annotate(providers_list=account_filters.providers_annotation())
        if self.keyset and self.after is not None:
            queryset = queryset.filter(pk__gt=self.after)
        return queryset

    def get_results(self, request):
        self._page_results(request)
        if request.GET.get(ProvisioningStatusFilter.parameter_name) == "drifted":
            # The "Values differ" list shows what differs: one query per table for the page.
            found = drift_selectors.differences([user.pk for user in self.result_list])
            for user in self.result_list:
                user.drift_values = found.get(user.pk, [])

    def _page_results(self, request):
        if not self.keyset:
            super().get_results(request)
            self.result_list = selectors.annotate_statuses(list(self.result_list))
            return
        per_page = self.list_per_page
        # One query gives the page and the count: the ids of the next `cap` + 1 users.
        cap = max(MIN_COUNT_CAP, per_page)
        ids = list(self.queryset.values_list("pk", flat=True)[: cap + 1])
        page_ids = ids[:per_page]
        rows = self.root_queryset.in_bulk(page_ids)
        self.result_list = selectors.annotate_statuses([rows[i] for i in page_ids if i in rows])
        if self.after is None:
            self.page_num = 1
        self.page_num = max(self.page_num, 1)
        offset = (self.page_num - 1) * per_page
        self.first_shown, self.last_shown = offset + 1, offset + len(page_ids)
        self.result_count = offset + len(ids)
        self.paginator = CappedCountPaginator(self.queryset, per_page, count_cap=offset + cap)
        self.show_full_result_count, self.full_result_count = False, None
        self.show_admin_actions = True
        self.can_show_all = False
        self.multi_page = False  # no numbered links: the keyset links in pagination.html
        self.first_page_url = self.get_query_string(remove=[PAGE_VAR]) if self.after is not None else None
        self.next_page_url = (
            self.get_query_string({AFTER_VAR: str(page_ids[-1]), PAGE_VAR: self.page_num + 1})
            if len(ids) > per_page
            else None
        )


def _unknown_filter_value(request, list_filter: admin.SimpleListFilter, value: str) -> None:
    """Say that a filter value in the address is not one of the filter's, instead of
    silently showing an unfiltered list as if it were filtered."""
    offered = ", ".join(key for key, _ in list_filter.lookup_choices)
    messages.warning(
        request,
        f"“{value[:80]}” is not a choice of the “{list_filter.title}” filter ({offered}): it was ignored.",
    )


def _drift_values(obj, side: str):
    """The differing values of one side ("app" or "auth"), one per line with its column."""
    values = getattr(obj, "drift_values", [])
    if not values:
        return "—"
    return format_html_join(
        mark_safe("<br>"),
        "<code>{}</code> {}",
        ((d["column"], "(empty)" if d[side] is None else d[side]) for d in values),
    )


def _status_column(field: str, label: str):
    """A ✓/✗ column that a screen reader reads as "present"/"missing" (the admin's
    boolean=True column only says alt="True")."""

    @admin.display(description=label)
    def column(obj):
        return status_icon_html(getattr(obj, field))

    column.__name__ = field
    return column


@admin.register(AuthUser)
class AuthUserAdmin(SaysWhatItIgnored, ReadOnlyMixin, admin.ModelAdmin):
    """auth.users belongs to Supabase Auth: read-only here, always."""

    # The ✓/✗ columns come first after the sign-up: they are what staff scan for.
    list_display = (
        "display_name",
        *(_status_column(selectors.status_field(spec.name), spec.label.capitalize()) for spec in SPEC),
        "phone",
        "providers",
        "signed_up",
        "last_sign_in",
    )
    list_display_links = ("display_name",)
    list_filter = (ProvisioningStatusFilter, AccountKindFilter, AccountStateFilter, ProviderFilter, JobFilter)
    search_fields = ("email",)
    search_help_text = "An email (any part, any case), a phone number, a user id or its 8-character short id."
    show_full_result_count = False
    paginator = CappedCountPaginator
    list_per_page = 50
    actions = ["provision_selected", drift_views.sync_selected]
    change_form_template = "admin/provisioning/authuser/change_form.html"
    change_list_template = "admin/provisioning/authuser/change_list.html"
    created_at_shown = staticmethod(time_field("created_at", "signed up"))
    updated_at_shown = staticmethod(time_field("updated_at", "updated"))
    last_sign_in_at_shown = staticmethod(time_field("last_sign_in_at", "last sign-in"))
    email_confirmed_at_shown = staticmethod(time_field("email_confirmed_at", "email confirmed"))
    phone_confirmed_at_shown = staticmethod(time_field("phone_confirmed_at", "phone confirmed"))
    deleted_at_shown = staticmethod(time_field("deleted_at", "deleted"))
    banned_until_shown = staticmethod(time_field("banned_until", "banned until"))
    is_anonymous_shown = staticmethod(yes_no_field("is_anonymous", "anonymous"))
    is_sso_user_shown = staticmethod(yes_no_field("is_sso_user", "SSO user"))
    fieldsets = (
        (None, {"fields": ("id", "email", "phone", "kind")}),
        (
            "Activity",
            {
                "fields": (
                    "created_at_shown",
                    "updated_at_shown",
                    "last_sign_in_at_shown",
                    "email_confirmed_at_shown",
                    "phone_confirmed_at_shown",
                )
            },
        ),
        (
            "State",
            {
                "fields": (
                    "deleted_at_shown",
                    "banned_until_shown",
                    "is_anonymous_shown",
                    "is_sso_user_shown",
                    "raw_user_meta_data",
                )
            },
        ),
    )
    readonly_fields = (
        "kind",
        "created_at_shown",
        "updated_at_shown",
        "last_sign_in_at_shown",
        "email_confirmed_at_shown",
        "phone_confirmed_at_shown",
        "deleted_at_shown",
        "banned_until_shown",
        "is_anonymous_shown",
        "is_sso_user_shown",
    )

    def has_provision_permission(self, request):
        return may_provision(request.user)

    def get_changelist(self, request, **kwargs):
        return StatusChangeList

    def uses_keyset(self) -> bool:
        return selectors.estimated_auth_users() > LARGE_TABLE

    def changelist_view(self, request, extra_context=None):
        if request.method == "POST" and request.POST.get("action") in BULK_ACTIONS:
            _refuse_bulk_action_unless_allowed(self, request)
        # "Compare now" (`?recheck=1`): scan, then the same list without the parameter, so
        # that a reload, a search or an action does not scan again.
        if request.method == "GET" and RECHECK_VAR in request.GET:
            drift_services.scan_drift()  # where the list reads one
            params = request.GET.copy()
            del params[RECHECK_VAR]
            return HttpResponseRedirect(f"{request.path}?{params.urlencode()}")
        return super().changelist_view(request, extra_context)

    def get_changelist_instance(self, request):
        # Decided once per request, before the filters run: they bound their reads by the
        # cursor (ProvisioningStatusFilter) and the change list pages by it.
        request.eloity_list_keyset = self.uses_keyset()
        request.eloity_list_after = None
        cursor = request.GET.get(AFTER_VAR)
        if cursor is not None:
            request.eloity_list_after = parse_uuid(cursor) if request.eloity_list_keyset else None
            if request.eloity_list_after is None:
                # Not a marker, or one from a large list's keyset pages on a list that
                # pages by number: either way, said.
                messages.warning(
                    request,
                    ignored_note(AFTER_VAR, cursor, "is not a page marker of this list: showing the first page."),
                )
        return super().get_changelist_instance(request)

    def get_sortable_by(self, request):
        # Sorting a large list by a column would read and sort every auth user per page.
        if getattr(request, "eloity_list_keyset", False):
            return ()
        return super().get_sortable_by(request)

    def get_paginator(self, request, queryset, per_page, orphans=0, allow_empty_first_page=True):
        # Count only ten pages beyond the one shown (between MIN_COUNT_CAP and COUNT_CAP):
        # the first page of a million-row list then costs tens of milliseconds, not hundreds.
        try:
            page = max(1, int(request.GET.get("p", 1)))
        except (TypeError, ValueError):
            page = 1
        cap = min(COUNT_CAP, max(MIN_COUNT_CAP, (page + 10) * per_page))
        return self.paginator(queryset, per_page, orphans, allow_empty_first_page, count_cap=cap)

    def get_ordering(self, request):
        # Decided once per request by get_changelist_instance; asked afresh elsewhere.
        keyset = getattr(request, "eloity_list_keyset", None)
        if keyset if keyset is not None else self.uses_keyset():
            return ("id",)
        return ("-created_at",)

    def get_search_results(self, request, queryset, search_term):
        return selectors.search_auth_users(queryset, search_term), False

    def get_list_display(self, request):
        shown = super().get_list_display(request)
        if request.GET.get(ProvisioningStatusFilter.parameter_name) == "drifted":
            # The values take the room of the phone and the times: the list fits 1280 px.
            rest = [column for column in shown[1:] if column not in ("phone", "signed_up", "last_sign_in")]
            return (shown[0], "app_value", "auth_value", *rest)
        return shown

    @admin.display(description="App value")
    def app_value(self, obj):
        return _drift_values(obj, "app")

    @admin.display(description="Auth value")
    def auth_value(self, obj):
        return _drift_values(obj, "auth")

    @admin.display(description="Sign-up", ordering="email")
    def display_name(self, obj):
        if obj.email:
            return obj.email
        if obj.phone:
            return format_html("<em>phone-only</em> {}", obj.phone)
        return format_html('<em>anonymous</em> <span title="{}">{}</span>', obj.pk, str(obj.pk)[:8])

    @admin.display(description="via")
    def providers(self, obj):
        """The sign-in providers, one a line (the list must fit a 1280 px screen)."""
        names = dict(account_filters.PROVIDER_CHOICES)
        found = [p for p in (getattr(obj, "providers_list", "") or "").split(",") if p]
        if not found:
            return "—"
        return format_html_join(mark_safe("<br>"), "{}", ((names.get(p, p),) for p in dict.fromkeys(found)))

    # Local time with the UTC value on hover (the admin's own columns show local time only).
    @admin.display(description="created at", ordering="created_at")
    def signed_up(self, obj):
        return local_time(obj.created_at)

    @admin.display(description="last sign in at", ordering="last_sign_in_at")
    def last_sign_in(self, obj):
        return local_time(obj.last_sign_in_at)

    @admin.display(description="kind")
    def kind(self, obj):
        return obj.kind

    # --- pages ------------------------------------------------------------------------
    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        custom = [
            path(
                "provision-all/",
                self.admin_site.admin_view(self.provision_all_view),
                name=f"{info[0]}_{info[1]}_provision_all",
            ),
            path(
                "sync-all/",
                self.admin_site.admin_view(lambda request: drift_views.sync_all_view(self, request)),
                name=f"{info[0]}_{info[1]}_sync_all",
            ),
            path(
                "orphans/",
                self.admin_site.admin_view(lambda request: drift_views.orphans_view(self, request)),
                name=f"{info[0]}_{info[1]}_orphans",
            ),
            path(
                "<path:object_id>/sync/",
                self.admin_site.admin_view(
                    lambda request, object_id: drift_views.sync_user_view(
                        self, request, self._get_user_or_404(object_id)
                    )
                ),
                name=f"{info[0]}_{info[1]}_sync",
            ),
            path(
                "<path:object_id>/provision/",
                self.admin_site.admin_view(self.provision_user_view),
                name=f"{info[0]}_{info[1]}_provision",
            ),
            *account_action_views.urls(self),
        ]
        return custom + super().get_urls()

    def _get_user_or_404(self, object_id) -> AuthUser:
        user_id = parse_uuid(object_id)
        if user_id is None:
            raise Http404("No auth user with that id.")
        obj = AuthUser.objects.filter(pk=user_id).first()
        if obj is None:
            raise Http404("No auth user with that id.")
        return obj

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self._get_user_or_404(object_id)
        app_rows = rows.app_rows(obj.pk)
        reasons = selectors.block_reasons(obj.pk)
        extra_context = {
            **(extra_context or {}),
            "app_rows": [
                {"table": table_spec(table).qualified_name, "label": label, "row": app_rows[table]}
                for table, label in ((spec.name, spec.label.capitalize()) for spec in SPEC)
            ],
            "missing_count": sum(row is None for row in app_rows.values()),
            "blocked": [
                {"label": table_spec(table).label, "table": table_spec(table).qualified_name, "reason": reason}
                for table, reason in reasons.items()
                if reason
            ],
            "writable_count": sum(reason is None for reason in reasons.values()),
            "next_steps": selectors.next_steps(reasons),
            "audit_events": selectors.audit_events_for(obj.pk)[:50],
            "can_provision": self.has_provision_permission(request),
            "drift": [row for row in drift_selectors.user_drift(obj.pk) if row["differs"]],
            # Asked on demand: a few reads as the app's roles, rolled back.
            "app_view": diagnostics.app_view(obj.pk, obj.email) if request.GET.get("app_view") == "1" else None,
            # What Supabase Auth knows of the account (docs/account.md).
            "account": account_overview(
                obj.pk, kind=request.GET.get("timeline", ""), page=request.GET.get("timeline_page", 1)
            ),
            # Fixing the account through Supabase Auth (docs/fixing-accounts.md).
            "account_actions": account_action_views.page_context(request, obj),
        }
        return super().change_view(request, str(obj.pk), form_url, extra_context)

    def provision_user_view(self, request, object_id):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        obj = self._get_user_or_404(object_id)
        result = _run_or_message(
            request, services.provision_users, actor=Actor.from_request(request), user_ids=[obj.pk]
        )
        if result is not None:
            _report(request, result, subject=obj.email or obj.phone or f"user {str(obj.pk)[:8]}")
        return HttpResponseRedirect(reverse("admin:provisioning_authuser_change", args=[obj.pk]))

    def _dry_run_page(self, request, template: str, title: str, result, **extra):
        """The confirmation page of a provisioning action: what a real run would write."""
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": title,
            "result": result,
            "tables": _result_tables(result),
            "sample_users": _sample_users(result),
            "people": selectors.person_labels([item.user_id for item in result.not_provisioned]),
            # Every reason with its count, before the users one by one.
            "failure_groups": result.failure_groups,
            "failure_people": selectors.person_labels([u for g in result.failure_groups for u in g.user_ids]),
            **extra,
        }
        return TemplateResponse(request, f"admin/provisioning/authuser/{template}", context)

    def provision_all_view(self, request):
        actor = Actor.from_request(request)
        if request.method == "POST":
            # A million users take minutes: the run goes to a background worker, and the
            # job page follows it batch by batch.
            from provisioning import jobs

            users = selectors.count_missing_any() if approvals.approvals_on() else 0
            asked = approval_views.ask_for_bulk_run(
                request, actor, kind=approval_kinds.PROVISION_ALL_MISSING, users=users
            )
            if asked is not None:
                return asked
            # A refusal (ProvisioningDenied, a PermissionDenied) is the admin's 403.
            job = jobs.start_provision_all_job(actor=actor)
            # No "queued" message: the job page says the job's state, live, and a message
            # would go on saying "queued" after the job ended.
            return HttpResponseRedirect(reverse("provisioning_job", args=[job.pk]))
        result = _run_or_message(request, services.preview_all_missing, actor=actor)
        if result is None:
            return HttpResponseRedirect(reverse("admin:provisioning_authuser_changelist"))
        return self._dry_run_page(
            request,
            "provision_all.html",
            "Provision all missing",
            result,
            needs_approval=approvals.bulk_needs_approval(result.users_processed),
        )

    @admin.action(description="Provision missing rows for selected users", permissions=["provision"])
    def provision_selected(self, request, queryset):
        ids = list(queryset.values_list("pk", flat=True)[: MAX_SELECTED + 1])
        if len(ids) > MAX_SELECTED:
            self.message_user(
                request,
                f"More than {MAX_SELECTED:,} users selected: use “Provision all missing” instead.",
                messages.ERROR,
            )
            return None
        actor = Actor.from_request(request)
        if request.POST.get("post") == "yes":
            result = _run_or_message(request, services.provision_users, actor=actor, user_ids=ids)
            if result is not None:
                _report(request, result)
            return None
        result = _run_or_message(request, services.provision_users, actor=actor, user_ids=ids, dry_run=True)
        if result is None:
            return None
        return self._dry_run_page(
            request,
            "provision_selected.html",
            "Provision selected users?",
            result,
            selected_ids=ids,
            action_checkbox_name=admin.helpers.ACTION_CHECKBOX_NAME,
            # The list as it was (filters, search, page): the action posts to its address.
            back_url=request.get_full_path(),
        )


#: The list's bulk actions and the audit action a refusal of each is recorded under (the
#: single-user pages record theirs the same way).
BULK_ACTIONS = {
    "provision_selected": AuditEvent.Action.PROVISION_SELECTED,
    "sync_selected": AuditEvent.Action.SYNC_VALUES,
}


def _refuse_bulk_action_unless_allowed(model_admin, request) -> None:
    """A bulk action posted by staff who may not run it (forged: the list offers them no
    action) is a 403 with a "denied" event, as a single user's button is. Django alone
    would redraw the list without a word, or answer 403 with no record."""
    if model_admin.has_view_permission(request) and may_provision(request.user):
        return
    name = request.POST["action"]
    selected = request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME)
    targets = [user_id for user_id in map(parse_uuid, selected[:MAX_SELECTED]) if user_id is not None]
    record_denied(
        actor=Actor.from_request(request),
        action=BULK_ACTIONS[name],
        target_user_ids=targets,
        detail={"bulk_action": name, "selected": len(selected)},
    )
    raise PermissionDenied("You do not have permission to run this action.")


def _run_or_message(request, service, **kwargs):
    """Call a provisioning service; a failure becomes a message. A refusal
    (ProvisioningDenied, a PermissionDenied) propagates: the admin answers 403."""
    try:
        return service(**kwargs)
    except SpecCycle as exc:
        messages.error(request, f"Nothing was written: {exc}")
        return None
    except services.ProvisioningFailed as exc:
        messages.error(request, f"Provisioning stopped by a database error, nothing of that batch was written: {exc}")
        if exc.result.total_created:
            messages.warning(request, f"Earlier batches completed: {exc.result.summary()}")
        return None


def _report(request, result: services.ProvisioningResult, *, subject: str | None = None) -> None:
    """The outcome as a message: green only when rows were written, never for nothing."""
    if result.total_created:
        level = messages.SUCCESS if result.ok else messages.WARNING
        messages.add_message(request, level, result.summary(subject=subject))
    elif result.ok:
        messages.info(request, f"Nothing to do: {subject or 'every selected user'} already has every row.")
    else:
        messages.warning(request, result.summary(subject=subject))
    _report_failure_groups(request, result)
    shown = result.not_provisioned[:10]
    people = selectors.person_labels([item.user_id for item in shown])
    for item in shown:
        name = people.get(str(item.user_id))
        who = f"{name} ({str(item.user_id)[:8]})" if name else str(item.user_id)
        table = "every table" if item.table == "*" else qualified_name(item.table)
        messages.warning(request, f"Not provisioned: {who}, {table}: {item.reason}")
    if result.not_provisioned_count > 10:
        messages.warning(request, f"… and {result.not_provisioned_count - 10} more; see the audit log.")


def _report_failure_groups(request, result: services.ProvisioningResult) -> None:
    """Before the users one by one (the first ten), every reason with its count: a rare
    reason is never hidden behind the ten of a common one."""
    if result.not_provisioned_count < 2:
        return
    groups = result.failure_groups
    people = selectors.person_labels([u for g in groups for u in g.user_ids])
    for group in groups:
        named = ", ".join(people.get(str(u), str(u)) for u in group.user_ids)
        more = f" and {group.more:,} more" if group.more else ""
        messages.warning(
            request,
            f"Could not be provisioned: {group.count:,} {'user' if group.count == 1 else 'users'}, "
            f"{group.table_label}: {group.reason} (for example {named}{more})",
        )


def _result_tables(result: services.ProvisioningResult) -> list[dict]:
    return [
        {
            "name": table,
            "count": result.created.get(table, 0),
            "skipped_columns": result.skipped_columns.get(table, []),
        }
        for table in result.tables
    ]


def _sample_users(result: services.ProvisioningResult, limit: int = 25) -> list[dict]:
    ids: list = []
    for sample in result.created_sample.values():
        for user_id in sample:
            if user_id not in ids:
                ids.append(user_id)
    ids = ids[:limit]
    users = selectors.with_status(AuthUser.objects.filter(pk__in=ids)).in_bulk()
    return [
        {
            "user": users[i],
            "tables": [t for t, sample in result.created_sample.items() if i in sample],
        }
        for i in ids
        if i in users
    ]
