"""Staff accounts and groups in the admin: Django's own pages (django.contrib.auth.admin),
with every change to an account, a group or their permissions recorded in the audit log
(audit/staff.py) in the same transaction, the acting staff member as its actor."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import transaction

from provisioning.actors import Actor
from provisioning.audit import staff


class AuditedChanges:
    """Before and after states of the object around Django's own add, change and delete
    views; the difference is one audit event. `state` and `record` name the audit
    functions for the model."""

    state = None
    record = None

    def _record(self, request, pk, before, after) -> None:
        self.record(actor=Actor.from_request(request), pk=pk, before=before, after=after)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        if request.method != "POST" or object_id is None:
            return super().changeform_view(request, object_id, form_url, extra_context)
        pk = _pk_or_none(self.model, object_id)  # a malformed id: Django's view answers it
        with transaction.atomic():
            before = self.state(pk)
            response = super().changeform_view(request, object_id, form_url, extra_context)
            if before is not None:
                self._record(request, pk, before, self.state(pk))
        return response

    def response_add(self, request, obj, post_url_continue=None):
        # Called once the new object and its many-to-many fields are saved, inside the
        # add view's transaction.
        self._record(request, obj.pk, None, self.state(obj.pk))
        return super().response_add(request, obj, post_url_continue)

    def delete_model(self, request, obj):
        pk = obj.pk  # None once deleted
        with transaction.atomic():
            before = self.state(pk)
            super().delete_model(request, obj)
            self._record(request, pk, before, None)

    def delete_queryset(self, request, queryset):
        with transaction.atomic():
            befores = {pk: self.state(pk) for pk in queryset.values_list("pk", flat=True)}
            super().delete_queryset(request, queryset)
            for pk, before in befores.items():
                self._record(request, pk, before, None)


def _pk_or_none(model, object_id):
    try:
        return model._meta.pk.to_python(unquote(str(object_id)))
    except ValidationError:
        return None


def _account_record(*, actor, pk, before, after):
    return staff.record_account_change(actor=actor, account_id=pk, before=before, after=after)


def _group_record(*, actor, pk, before, after):
    return staff.record_group_change(actor=actor, group_id=pk, before=before, after=after)


class AuditedUserAdmin(AuditedChanges, UserAdmin):
    state = staticmethod(staff.account_state)
    record = staticmethod(_account_record)

    def user_change_password(self, request, id, form_url=""):
        pk = _pk_or_none(self.model, id)
        if request.method != "POST" or pk is None:
            return super().user_change_password(request, id, form_url)  # a malformed id: its 404
        User = get_user_model()
        with transaction.atomic():
            before = User.objects.filter(pk=pk).values_list("password", flat=True).first()
            response = super().user_change_password(request, id, form_url)
            account = User.objects.filter(pk=pk).first()
            if account is not None and before is not None and account.password != before:
                staff.record_password_change(
                    actor=Actor.from_request(request), account_id=account.pk, usable=account.has_usable_password()
                )
        return response


class AuditedGroupAdmin(AuditedChanges, GroupAdmin):
    state = staticmethod(staff.group_state)
    record = staticmethod(_group_record)


User = get_user_model()
for model, model_admin in ((User, AuditedUserAdmin), (Group, AuditedGroupAdmin)):
    if admin.site.is_registered(model):
        admin.site.unregister(model)
    admin.site.register(model, model_admin)
