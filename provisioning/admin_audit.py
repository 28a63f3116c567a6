"""The audit log in the admin: read-only for everyone, superusers included."""

from __future__ import annotations

from django.contrib import admin
from django.http import Http404

from provisioning.admin import CappedCountPaginator
from provisioning.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read-only for everyone, superusers included: the audit log is append-only."""

    list_display = ("created_at", "actor_username", "channel", "action", "outcome", "rows_created_count", "targets")
    list_filter = ("action", "outcome", "channel", "created_at")
    date_hierarchy = "created_at"
    search_fields = ("actor_username",)
    show_full_result_count = False
    paginator = CappedCountPaginator
    readonly_fields = [f.name for f in AuditEvent._meta.fields] + ["target_user_ids", "tables"]
    fieldsets = (
        (None, {"fields": ("created_at", "actor_username", "actor", "channel", "client_address", "run_id")}),
        ("What", {"fields": ("action", "outcome", "tables", "target_user_ids")}),
        ("Result", {"fields": ("rows_created", "not_provisioned", "detail")}),
    )

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_object(self, request, object_id, from_field=None):
        if not str(object_id).isdigit():
            raise Http404("Malformed id.")
        return super().get_object(request, object_id, from_field)

    @admin.display(description="rows created")
    def rows_created_count(self, obj):
        return obj.rows_created_count

    @admin.display(description="users")
    def targets(self, obj):
        return len(obj.target_user_ids or [])
