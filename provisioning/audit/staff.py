"""Changes to staff accounts and their rights in the audit log.

Django's admin writes who changed a staff account, a group or their permissions to
`django_admin_log`, a table any admin may edit and whose rows go when the account does.
These events are in the append-only audit log instead: what an account or group looked
like before and after (name, active/staff/superuser flags, groups, permissions as
`app_label.codename`), never a password or its hash. The admin pages for users and groups
(web/admin/staff.py) call these functions.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from provisioning.actors import Actor
from provisioning.audit.recording import record_event
from provisioning.models import AuditEvent

Action = AuditEvent.Action


def _permission_names(permissions) -> list[str]:
    return sorted(f"{p.content_type.app_label}.{p.codename}" for p in permissions.select_related("content_type"))


def account_state(account_id) -> dict | None:
    """A staff account's rights as the audit log keeps them; None when it does not exist.
    Reads only."""
    account = get_user_model().objects.filter(pk=account_id).first() if account_id is not None else None
    if account is None:
        return None
    return {
        "username": account.get_username(),
        "email": account.email,
        "is_active": account.is_active,
        "is_staff": account.is_staff,
        "is_superuser": account.is_superuser,
        "groups": sorted(account.groups.values_list("name", flat=True)),
        "permissions": _permission_names(account.user_permissions.all()),
    }


def group_state(group_id) -> dict | None:
    """A group's name and permissions; None when it does not exist. Reads only."""
    group = Group.objects.filter(pk=group_id).first() if group_id is not None else None
    if group is None:
        return None
    return {"name": group.name, "permissions": _permission_names(group.permissions.all())}


def differences(before: dict, after: dict) -> dict:
    """What changed between two states: lists as {"added", "removed"}, other values as
    {"from", "to"}."""
    changed = {}
    for key in after:
        old, new = before.get(key), after[key]
        if old == new:
            continue
        if isinstance(new, list):
            changed[key] = {
                "added": [v for v in new if v not in (old or [])],
                "removed": [v for v in (old or []) if v not in new],
            }
        else:
            changed[key] = {"from": old, "to": new}
    return changed


def record_account_change(*, actor: Actor, account_id, before: dict | None, after: dict | None) -> AuditEvent | None:
    """One event for a staff account added (`before` None), changed or deleted (`after`
    None), in the caller's transaction; nothing when nothing the log keeps changed."""
    return _record(actor, account_id, before, after, kind="account", name_key="username")


def record_group_change(*, actor: Actor, group_id, before: dict | None, after: dict | None) -> AuditEvent | None:
    """As record_account_change, for a group of staff and its permissions."""
    return _record(actor, group_id, before, after, kind="group", name_key="name")


def record_password_change(*, actor: Actor, account_id, usable: bool) -> AuditEvent:
    """A staff account's password set (or disabled) by another staff member in the admin.
    Only that it happened: never the password or its hash."""
    state = account_state(account_id) or {}
    return record_event(
        actor=actor,
        action=Action.STAFF_PASSWORD_CHANGED,
        outcome=AuditEvent.Outcome.SUCCEEDED,
        tables=[],
        detail={
            "account": state.get("username"),
            "account_id": account_id,
            "password": "set" if usable else "disabled",
        },
    )


_ACTIONS = {
    "account": (Action.STAFF_ACCOUNT_ADDED, Action.STAFF_ACCOUNT_CHANGED, Action.STAFF_ACCOUNT_DELETED),
    "group": (Action.STAFF_GROUP_ADDED, Action.STAFF_GROUP_CHANGED, Action.STAFF_GROUP_DELETED),
}


def _record(actor: Actor, pk, before: dict | None, after: dict | None, *, kind: str, name_key: str):
    added, changed, deleted = _ACTIONS[kind]
    if before is None and after is None:
        return None
    if before is None:
        action, detail = added, {"state": after}
    elif after is None:
        action, detail = deleted, {"state": before}
    else:
        diff = differences(before, after)
        if not diff:
            return None
        action, detail = changed, {"changes": diff}
    name = (after or before)[name_key]
    return record_event(
        actor=actor,
        action=action,
        outcome=AuditEvent.Outcome.SUCCEEDED,
        tables=[],
        detail={kind: name, f"{kind}_id": pk, **detail},
    )
