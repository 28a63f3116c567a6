"""The app tables (public.users, profiles, wallets) in the admin: browsed, never edited
here; rows are written only by the provisioning services."""

from __future__ import annotations

from django.contrib import admin
from django.http import Http404

from provisioning.ids import parse_uuid
from provisioning.models import AppUser, Profile, Wallet
from provisioning.web.admin.base import CappedCountPaginator, ReadOnlyMixin, time_field, yes_no_field


class ReadOnlyAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """The app tables, keyed by an auth user id: browsed here, written only by services."""

    def get_object(self, request, object_id, from_field=None):
        user_id = parse_uuid(object_id)
        if user_id is None:
            raise Http404("Malformed id.")
        # Not .get(): nothing makes profiles.user_id unique in shape A, and a duplicate
        # row must not turn this page into a 500 (diagnostics report duplicates).
        return self.get_queryset(request).filter(pk=user_id).first()


@admin.register(AppUser)
class AppUserAdmin(ReadOnlyAdmin):
    list_display = ("email", "username", "full_name", time_field("created_at", "created"), "id")
    search_fields = ("email", "username")
    show_full_result_count = False
    paginator = CappedCountPaginator


@admin.register(Profile)
class ProfileAdmin(ReadOnlyAdmin):
    list_display = (
        "user_id",
        "username",
        "full_name",
        yes_no_field("is_verified", "verified"),
        time_field("created_at", "created"),
    )
    search_fields = ("username",)
    show_full_result_count = False
    paginator = CappedCountPaginator


@admin.register(Wallet)
class WalletAdmin(ReadOnlyAdmin):
    list_display = (
        "user_id",
        "usdt_balance",
        yes_no_field("is_active", "active"),
        yes_no_field("is_frozen", "frozen"),
        time_field("created_at", "created"),
    )
    show_full_result_count = False
    paginator = CappedCountPaginator
