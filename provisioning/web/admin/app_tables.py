"""The app tables (public.users, profiles, wallets) in the admin: browsed, never edited
here; rows are written only by the provisioning services."""

from __future__ import annotations

from django.contrib import admin
from django.http import Http404
from django.urls import reverse
from django.utils.html import format_html

from provisioning.ids import parse_uuid
from provisioning.models import AppUser, Profile, Wallet
from provisioning.web.admin.base import CappedCountPaginator, ReadOnlyMixin, time_field, yes_no_field
from provisioning.web.admin.ignored_input import SaysWhatItIgnored


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


class ReadOnlyAdmin(SaysWhatItIgnored, ReadOnlyMixin, admin.ModelAdmin):
    """The app tables, keyed by an auth user id: browsed here, written only by services.
    The search box also takes an auth user's id: the row of that user."""

    #: The column holding the auth user's id.
    user_field = "user_id"

    def get_search_results(self, request, queryset, search_term):
        user_id = parse_uuid(search_term)
        if user_id is not None:
            return queryset.filter(**{self.user_field: user_id}), False
        return super().get_search_results(request, queryset, search_term)

    def get_object(self, request, object_id, from_field=None):
        user_id = parse_uuid(object_id)
        if user_id is None:
            raise Http404("Malformed id.")
        # Not .get(): nothing makes profiles.user_id unique in shape A, and a duplicate
        # row must not turn this page into a 500 (diagnostics report duplicates).
        return self.get_queryset(request).filter(pk=user_id).first()


@admin.register(AppUser)
class AppUserAdmin(ReadOnlyAdmin):
    user_field = "id"
    list_display = ("email", "username", "full_name", time_field("created_at", "created"), auth_user_link("id"))
    search_fields = ("email", "username")
    search_help_text = "Part of an email or username, or an auth user's id."
    show_full_result_count = False
    paginator = CappedCountPaginator


@admin.register(Profile)
class ProfileAdmin(ReadOnlyAdmin):
    list_display_links = ("username",)  # not the auth user column: it links elsewhere
    list_display = (
        auth_user_link("user_id"),
        "username",
        "full_name",
        yes_no_field("is_verified", "verified"),
        time_field("created_at", "created"),
    )
    search_fields = ("username",)
    search_help_text = "Part of a username, or an auth user's id."
    show_full_result_count = False
    paginator = CappedCountPaginator


@admin.register(Wallet)
class WalletAdmin(ReadOnlyAdmin):
    list_display_links = ("usdt_balance",)  # not the auth user column: it links elsewhere
    list_display = (
        auth_user_link("user_id"),
        "usdt_balance",
        yes_no_field("is_active", "active"),
        yes_no_field("is_frozen", "frozen"),
        time_field("created_at", "created"),
    )
    search_fields = ("user_id",)  # the search itself: an auth user's id (get_search_results)
    search_help_text = "An auth user's id."
    show_full_result_count = False
    paginator = CappedCountPaginator

    def get_search_results(self, request, queryset, search_term):
        if search_term.strip() and parse_uuid(search_term) is None:
            return queryset.none(), False  # only ids are searchable here, and this is none
        return super().get_search_results(request, queryset, search_term)
